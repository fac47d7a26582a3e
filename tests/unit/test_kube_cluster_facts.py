"""What the installer reads of a cluster as a real one shows it: node allocatable, the beta
default-StorageClass annotation, Secret keys that go away."""

from __future__ import annotations

from pathlib import Path

from installer.checks.probes import describe_cluster
from installer.engine.kubernetes import Cluster
from tests.support.fake_kube_api import FakeKubeAPI, Node
from tests.support.kube_install import answers, install

NAMESPACE = "codequal"


def test_the_probe_reads_what_pods_may_use_of_a_node_not_its_capacity(tmp_path: Path) -> None:
    node = Node(
        "n1",
        cpu_millis=4000,
        memory_bytes=16 << 30,
        reserved_cpu_millis=500,
        reserved_memory_bytes=2 << 30,
    )
    with FakeKubeAPI(nodes=[node]) as api:
        config = api.write_kubeconfig(tmp_path / "kubeconfig")
        with Cluster.connect(environ={"KUBECONFIG": str(config)}) as cluster:
            info = describe_cluster(cluster)
    assert info.nodes is not None
    assert [(n.cpus, n.memory_bytes) for n in info.nodes] == [(3.5, 14 << 30)]


def test_the_beta_default_storage_class_annotation_is_recognised(tmp_path: Path) -> None:
    with FakeKubeAPI(storage_classes=()) as api:
        api.add(
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {
                    "name": "legacy",
                    "annotations": {"storageclass.beta.kubernetes.io/is-default-class": "true"},
                },
                "provisioner": "fake.example/disk",
            }
        )
        config = api.write_kubeconfig(tmp_path / "kubeconfig")

        run = install(answers(monitoring={"enabled": False}), config, tmp_path / "root")

        assert run.exit_code == 0, run.text()
        assert "StorageClass: the cluster default (legacy) is used" in run.text()
        claims = api.list_objects("v1", "PersistentVolumeClaim", NAMESPACE)
        assert claims and {c["spec"]["storageClassName"] for c in claims} == {"legacy"}


def test_a_secret_key_the_install_stops_sending_is_removed(tmp_path: Path) -> None:
    with FakeKubeAPI() as api:
        config = api.write_kubeconfig(tmp_path / "kubeconfig")
        both = answers(monitoring={"enabled": False}, providers=["anthropic", "openai"])
        assert install(both, config, tmp_path / "root").exit_code == 0
        secret = api.get_object("v1", "Secret", "codequal-secrets", NAMESPACE)
        assert secret is not None and "OPENAI_API_KEY" in secret["data"]

        one = answers(monitoring={"enabled": False}, providers=["anthropic"])
        run = install(one, config, tmp_path / "root")

        assert run.exit_code == 0, run.text()
        secret = api.get_object("v1", "Secret", "codequal-secrets", NAMESPACE)
        assert secret is not None
        assert "OPENAI_API_KEY" not in secret["data"]
        assert "ANTHROPIC_API_KEY" in secret["data"]
