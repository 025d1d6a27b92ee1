"""AWS infrastructure of the medical claims pipeline as typed Pulumi components.

The package is importable (tests run the program under Pulumi mocks) and is also the Pulumi program directory
(`main: infra/` in Pulumi.yaml); `__main__.py` only wires the components together through `infra.program`.
"""
