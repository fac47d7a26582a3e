"""uninstall's Compose inventory: by label and by name, never another project's objects."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from installer.answers import AnswerFile
from installer.uninstall import compose_inventory


@dataclass
class Obj:
    id: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    status: str = "running"


class Collection:
    """docker-py's containers/volumes/networks ``list`` with label and name filters."""

    def __init__(self, items: list[Obj]) -> None:
        self.items = items

    def list(self, filters: dict[str, str], **_: Any) -> list[Obj]:
        if "label" in filters:
            key, value = filters["label"].split("=", 1)
            return [o for o in self.items if o.labels.get(key) == value]
        return [o for o in self.items if filters["name"] in o.name]  # the Engine: substring


class Client:
    def __init__(self, containers: list[Obj], volumes: list[Obj], networks: list[Obj]) -> None:
        self.containers = Collection(containers)
        self.volumes = Collection(volumes)
        self.networks = Collection(networks)

    def df(self) -> dict[str, Any]:
        return {
            "Volumes": [{"Name": v.name, "UsageData": {"Size": 4096}} for v in self.volumes.items]
        }


def test_objects_are_found_by_label_and_by_name_but_not_another_projects(tmp_path: Path) -> None:
    install_dir = tmp_path / "codequal"
    (install_dir / "state").mkdir(parents=True)
    (install_dir / "state" / "result.json").write_text(
        json.dumps(
            {"status": "installed", "compose_project": "codequal", "release": {"version": "1.0"},
             "images": {"codequal": "codequal-test/standin:1"}}
        )
    )  # fmt: skip
    (install_dir / "docker-compose.yml").write_text("services: {}\n")
    mine = {"com.docker.compose.project": "codequal"}
    other = {"com.docker.compose.project": "codequal-other-abc123"}
    client = Client(
        containers=[
            Obj("1", "codequal-codequal-1", {**mine, "com.docker.compose.service": "codequal"}),
            Obj("2", "codequal-deepwiki-1"),  # lost its labels: found by name
            Obj("3", "codequal-other-abc123-codequal-1", other),  # another installation
            Obj("4", "mycodequal-x"),  # a name that merely contains the project
        ],
        volumes=[
            Obj(
                "v1",
                "codequal_codequal_data",
                {**mine, "com.docker.compose.volume": "codequal_data"},
            ),
            Obj("v2", "codequal_deepwiki_data"),
            Obj("v3", "codequal-other-abc123_codequal_data", other),
        ],
        networks=[
            Obj("n1", "codequal_default", mine),
            Obj("n2", "codequal-other-abc123_default", other),
        ],
    )
    answers = AnswerFile.model_validate(
        {"version": 1, "target": "development", "install_dir": str(install_dir)}
    )

    inventory, found = compose_inventory(answers, client)

    assert sorted(c.name for c in found["containers"]) == [
        "codequal-codequal-1",
        "codequal-deepwiki-1",
    ]
    assert sorted(v.name for v in found["volumes"]) == [
        "codequal_codequal_data",
        "codequal_deepwiki_data",
    ]
    assert [n.name for n in found["networks"]] == ["codequal_default"]
    rows = {(i.kind, i.name): i for i in inventory.items}
    assert rows[("volume", "codequal_codequal_data")].size == 4096
    assert rows[("volume", "codequal_codequal_data")].action(purge=False) == "kept"
    assert rows[("volume", "codequal_codequal_data")].action(purge=True) == "removed"
    assert rows[("container", "codequal-codequal-1")].action(purge=False) == "removed"
    image = rows[("image", "codequal-test/standin:1")]
    assert image.action(purge=True) == "kept" and "shared" in image.detail
    assert ("state", str(install_dir / "state")) in rows
    assert inventory.installed_release == "1.0"
