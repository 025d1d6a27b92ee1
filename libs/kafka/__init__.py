"""Kafka for the claims pipeline: a local KRaft broker, topic management, client configuration and the producer.

Why a package of its own: every app talks to the same brokers with the same security settings and the same topic
names, locally (a single broker started from Maven Central jars) and on Amazon MSK (SASL_SSL with IAM). Keeping the
translation from `libs.settings.KafkaSettings` to client configuration in one place is what makes "works locally"
mean "works on MSK".
"""

from libs.kafka.topics import TopicRole, Topics, TopicSpec, load_topics

__all__ = ["TopicRole", "TopicSpec", "Topics", "load_topics"]
