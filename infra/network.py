"""The VPC of the data services: private subnets only, no internet gateway, peers admitted per port.

Why this shape: PHI must never be reachable from the internet. Nothing here has a public IP or a route to an
internet gateway; AWS APIs are reached through VPC endpoints (an S3 gateway endpoint for the lake, interface
endpoints for the rest).
Security groups name their peers instead of CIDRs: MSK admits IAM-authenticated TLS (9098) from the EMR nodes only,
Redshift admits 5439 from the EMR nodes only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.iam_documents import assume_role_policy, flow_logs_policy, to_json

MSK_IAM_TLS_PORT = 9098
REDSHIFT_PORT = 5439
HTTPS_PORT = 443
# EMR in a private subnet: the service-access group must admit 9443 from the primary node group.
EMR_SERVICE_ACCESS_PORT = 9443
EMR_PRIMARY_SERVICE_PORT = 8443
# AmazonEMRServicePolicy_v2 only lets EMR use subnets and security groups carrying this tag.
EMR_MANAGED_POLICY_TAG = {"for-use-with-amazon-emr-managed-policies": "true"}


@dataclass(frozen=True)
class NetworkArgs:
    """VPC layout from `medical-claims:network`."""

    availability_zones: Sequence[str]
    region: str
    kms_key_arn: pulumi.Input[str]
    cidr_block: str = "10.40.0.0/16"
    interface_endpoints: Sequence[str] = field(default_factory=lambda: ["sts", "logs", "kms", "secretsmanager"])
    flow_log_retention_days: int = 365

    def __post_init__(self) -> None:
        if len(self.availability_zones) < 2:
            msg = f"NetworkArgs.availability_zones: expected >= 2 zones, found {list(self.availability_zones)}"
            raise ValueError(msg)
        network = ipaddress.ip_network(self.cidr_block)
        if network.prefixlen > 20:
            msg = f"NetworkArgs.cidr_block: expected /20 or larger to carve /24+ subnets, found {self.cidr_block}"
            raise ValueError(msg)

    def subnet_cidrs(self) -> list[str]:
        """One private subnet per AZ, each a sixteenth of the VPC."""
        network = ipaddress.ip_network(self.cidr_block)
        subnets = network.subnets(new_prefix=network.prefixlen + 4)
        return [str(next(subnets)) for _ in self.availability_zones]


class Network(pulumi.ComponentResource):
    """VPC, private subnets, security groups per peer and port, VPC endpoints, flow logs."""

    vpc_id: pulumi.Output[str]
    private_subnet_ids: list[pulumi.Output[str]]
    emr_client_sg_id: pulumi.Output[str]
    emr_primary_sg_id: pulumi.Output[str]
    emr_core_sg_id: pulumi.Output[str]
    emr_service_access_sg_id: pulumi.Output[str]
    msk_sg_id: pulumi.Output[str]
    redshift_sg_id: pulumi.Output[str]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("claims:network:Network", name, None, opts)
        self._name = name
        self._args = args
        vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=args.cidr_block, enable_dns_hostnames=True,
                          enable_dns_support=True, opts=self._child())
        self.vpc_id = vpc.id
        self._lock_default_security_group(vpc)
        route_table = aws.ec2.RouteTable(f"{name}-private-routes", vpc_id=vpc.id, opts=self._child())
        self.private_subnet_ids = self._create_private_subnets(vpc, route_table)
        s3_endpoint = self._create_s3_gateway_endpoint(vpc, route_table)
        self._create_security_groups(vpc, s3_endpoint.prefix_list_id)
        self._create_interface_endpoints(vpc)
        self._create_flow_logs(vpc)
        self.register_outputs({
            "vpc_id": self.vpc_id,
            "private_subnet_ids": self.private_subnet_ids,
            "msk_sg_id": self.msk_sg_id,
            "redshift_sg_id": self.redshift_sg_id,
            "emr_client_sg_id": self.emr_client_sg_id,
        })

    def _child(self, *, depends_on: list[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=depends_on)

    def _lock_default_security_group(self, vpc: aws.ec2.Vpc) -> None:
        # Adopting the default group with no rules removes its allow-all rules (CIS AWS 5.4).
        aws.ec2.DefaultSecurityGroup(f"{self._name}-default-sg", vpc_id=vpc.id, opts=self._child())

    def _create_private_subnets(self, vpc: aws.ec2.Vpc, route_table: aws.ec2.RouteTable) -> list[pulumi.Output[str]]:
        subnet_ids = []
        for zone, cidr in zip(self._args.availability_zones, self._args.subnet_cidrs(), strict=True):
            subnet = aws.ec2.Subnet(
                f"{self._name}-private-{zone}", vpc_id=vpc.id, cidr_block=cidr, availability_zone=zone,
                map_public_ip_on_launch=False, tags={"tier": "private", **EMR_MANAGED_POLICY_TAG},
                opts=self._child())
            aws.ec2.RouteTableAssociation(f"{self._name}-private-{zone}-routes", subnet_id=subnet.id,
                                          route_table_id=route_table.id, opts=self._child())
            subnet_ids.append(subnet.id)
        return subnet_ids

    def _create_s3_gateway_endpoint(self, vpc: aws.ec2.Vpc, route_table: aws.ec2.RouteTable) -> aws.ec2.VpcEndpoint:
        # Lake traffic (and Redshift COPY under enhanced VPC routing) stays on the AWS network.
        return aws.ec2.VpcEndpoint(
            f"{self._name}-s3-endpoint", vpc_id=vpc.id, service_name=f"com.amazonaws.{self._args.region}.s3",
            vpc_endpoint_type="Gateway", route_table_ids=[route_table.id], opts=self._child())

    def _security_group(self, role: str, vpc: aws.ec2.Vpc, description: str, *,
                        emr_managed: bool = False) -> aws.ec2.SecurityGroup:
        return aws.ec2.SecurityGroup(
            f"{self._name}-{role}-sg", vpc_id=vpc.id, description=description,
            # EMR adds rules to its managed groups itself; they must be revoked for the group to be deletable.
            revoke_rules_on_delete=emr_managed or None,
            tags={"role": role, **(EMR_MANAGED_POLICY_TAG if emr_managed else {})},
            opts=self._child())

    def _ingress(self, name: str, group: aws.ec2.SecurityGroup, port: int, peer: aws.ec2.SecurityGroup,
                 description: str) -> None:
        aws.vpc.SecurityGroupIngressRule(
            f"{self._name}-{name}", security_group_id=group.id, referenced_security_group_id=peer.id,
            ip_protocol="tcp", from_port=port, to_port=port, description=description, opts=self._child())

    def _egress(self, name: str, group: aws.ec2.SecurityGroup, port: int, description: str, *,
                peer: aws.ec2.SecurityGroup | None = None, prefix_list_id: pulumi.Input[str] | None = None) -> None:
        aws.vpc.SecurityGroupEgressRule(
            f"{self._name}-{name}", security_group_id=group.id,
            referenced_security_group_id=peer.id if peer is not None else None, prefix_list_id=prefix_list_id,
            ip_protocol="tcp", from_port=port, to_port=port, description=description, opts=self._child())

    def _create_security_groups(self, vpc: aws.ec2.Vpc, s3_prefix_list_id: pulumi.Output[str]) -> None:
        client = self._security_group("emr-client", vpc, "EMR nodes as clients of MSK, Redshift and AWS APIs")
        primary = self._security_group("emr-primary", vpc, "EMR managed: primary node", emr_managed=True)
        core = self._security_group("emr-core", vpc, "EMR managed: core and task nodes", emr_managed=True)
        service = self._security_group("emr-service-access", vpc, "EMR managed: service access in private subnet",
                                       emr_managed=True)
        msk = self._security_group("msk", vpc, "MSK brokers: IAM-authenticated TLS from EMR only")
        redshift = self._security_group("redshift", vpc, "Redshift: SQL from EMR only")
        self._endpoints_sg = self._security_group("endpoints", vpc, "Interface VPC endpoints: HTTPS from EMR only")

        self._ingress("msk-from-emr", msk, MSK_IAM_TLS_PORT, client, "Kafka SASL/IAM over TLS from EMR")
        self._ingress("msk-from-msk", msk, MSK_IAM_TLS_PORT, msk, "Kafka SASL/IAM over TLS between brokers")
        self._ingress("redshift-from-emr", redshift, REDSHIFT_PORT, client, "Redshift SQL from EMR")
        self._ingress("endpoints-from-emr", self._endpoints_sg, HTTPS_PORT, client, "AWS APIs from EMR")
        self._ingress("service-access-from-primary", service, EMR_SERVICE_ACCESS_PORT, primary,
                      "EMR service access from the primary node")

        self._egress("emr-to-msk", client, MSK_IAM_TLS_PORT, "Kafka", peer=msk)
        self._egress("emr-to-redshift", client, REDSHIFT_PORT, "Redshift", peer=redshift)
        self._egress("emr-to-endpoints", client, HTTPS_PORT, "AWS APIs", peer=self._endpoints_sg)
        self._egress("emr-to-s3", client, HTTPS_PORT, "S3 gateway endpoint", prefix_list_id=s3_prefix_list_id)
        self._egress("msk-to-msk", msk, MSK_IAM_TLS_PORT, "Replication between brokers", peer=msk)
        self._egress("redshift-to-s3", redshift, HTTPS_PORT, "COPY from S3 (enhanced VPC routing)",
                     prefix_list_id=s3_prefix_list_id)
        self._egress("service-access-to-primary", service, EMR_PRIMARY_SERVICE_PORT, "EMR agent", peer=primary)
        self._egress("service-access-to-core", service, EMR_PRIMARY_SERVICE_PORT, "EMR agent", peer=core)

        self.emr_client_sg_id = client.id
        self.emr_primary_sg_id = primary.id
        self.emr_core_sg_id = core.id
        self.emr_service_access_sg_id = service.id
        self.msk_sg_id = msk.id
        self.redshift_sg_id = redshift.id

    def _create_interface_endpoints(self, vpc: aws.ec2.Vpc) -> None:
        for service in self._args.interface_endpoints:
            aws.ec2.VpcEndpoint(
                f"{self._name}-{service}-endpoint", vpc_id=vpc.id,
                service_name=f"com.amazonaws.{self._args.region}.{service}", vpc_endpoint_type="Interface",
                subnet_ids=self.private_subnet_ids, security_group_ids=[self._endpoints_sg.id],
                private_dns_enabled=True, opts=self._child())

    def _create_flow_logs(self, vpc: aws.ec2.Vpc) -> None:
        # Flow logs are the network half of the HIPAA audit trail (who talked to the PHI stores).
        log_group = aws.cloudwatch.LogGroup(
            f"{self._name}-flow-logs", name=f"/claims/{self._name}/vpc-flow-logs",
            retention_in_days=self._args.flow_log_retention_days, kms_key_id=self._args.kms_key_arn,
            opts=self._child())
        role = aws.iam.Role(f"{self._name}-flow-logs-role",
                            assume_role_policy=to_json(assume_role_policy("vpc-flow-logs.amazonaws.com")),
                            opts=self._child())
        policy = aws.iam.RolePolicy(f"{self._name}-flow-logs-policy", role=role.id,
                                    policy=log_group.arn.apply(lambda arn: to_json(flow_logs_policy(arn))),
                                    opts=self._child())
        aws.ec2.FlowLog(f"{self._name}-flow-log", vpc_id=vpc.id, traffic_type="ALL",
                        log_destination_type="cloud-watch-logs", log_destination=log_group.arn,
                        iam_role_arn=role.arn, opts=self._child(depends_on=[policy]))
