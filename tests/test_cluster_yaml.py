"""Validate cluster.yaml with the Ray cluster launcher's own config validation.

`ray up` does, before it touches the cloud (ray.autoscaler._private.commands._bootstrap_config):

    config = prepare_config(config)   # merge ray/autoscaler/aws/defaults.yaml, setup cmds, ...
    validate_config(config)           # jsonschema against ray/autoscaler/ray-schema.json
                                      # + head_node_type / min_workers consistency checks

Both live in ray.autoscaler._private.util and are purely local (the AWS defaults are a YAML
file shipped with ray; no boto3, credentials or network), so the tests call exactly those.
The provider bootstrap that follows in `ray up` (IAM, subnets, key pairs) needs AWS and is
not exercised here.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
from pathlib import Path

import jsonschema
import pytest
import ray.autoscaler
import yaml
from ray.autoscaler._private import commands as ray_commands
from ray.autoscaler._private.util import prepare_config, validate_config

CLUSTER_YAML = Path(__file__).resolve().parents[1] / "cluster.yaml"
RAY_SCHEMA = Path(os.path.dirname(ray.autoscaler.__file__)) / "ray-schema.json"


def ray_validate(config: dict) -> dict:
    """What `ray up` runs locally on a cluster config; raises if Ray would reject it."""
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


@pytest.fixture(scope="module")
def raw() -> dict:
    with open(CLUSTER_YAML) as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def prepared(raw) -> dict:
    return ray_validate(raw)


# --------------------------------------------------------------------------- validation


def test_ray_up_uses_these_validators():
    # Guard: if Ray stops validating this way, these tests would silently test the wrong thing.
    src = inspect.getsource(ray_commands._bootstrap_config)
    assert "prepare_config(config)" in src
    assert "validate_config(config)" in src
    assert RAY_SCHEMA.is_file()


def test_cluster_yaml_passes_ray_validate_config(prepared):
    assert prepared["cluster_name"] == "tts-align"
    assert prepared["provider"]["type"] == "aws"


def test_raw_file_matches_ray_schema(raw):
    # The file as written (before Ray merges its AWS defaults in) is schema-valid too.
    schema = json.loads(RAY_SCHEMA.read_text())
    jsonschema.validate(raw, schema)


def test_top_level_fields(raw):
    assert raw["cluster_name"] == "tts-align"
    assert raw["provider"]["type"] == "aws"
    assert raw["provider"]["region"]
    assert isinstance(raw["max_workers"], int) and raw["max_workers"] > 0
    assert raw["head_node_type"] in raw["available_node_types"]


# --------------------------------------------------------------------------- content


def _worker_types(cfg: dict) -> dict:
    return {k: v for k, v in cfg["available_node_types"].items() if k != cfg["head_node_type"]}


def test_dashboard_on_8265(raw):
    head_cmds = " ".join(raw["head_start_ray_commands"])
    assert "ray start --head" in head_cmds
    assert "--dashboard-port=8265" in head_cmds
    assert "--dashboard-host=0.0.0.0" in head_cmds
    worker_cmds = " ".join(raw["worker_start_ray_commands"])
    assert "ray start --address=$RAY_HEAD_IP:6379" in worker_cmds


def test_has_gpu_worker_type(raw):
    gpu = {k: v for k, v in _worker_types(raw).items() if v["resources"].get("GPU", 0) > 0}
    assert gpu, "expected a worker node type that declares GPU resources"
    for nt in gpu.values():
        assert nt["resources"].get("CPU", 0) > 0
        assert nt.get("min_workers", 0) == 0
        assert nt["max_workers"] > 0


def test_has_cpu_only_worker_type(raw):
    cpu_only = {
        k: v
        for k, v in _worker_types(raw).items()
        if v["resources"].get("CPU", 0) > 0 and v["resources"].get("GPU", 0) == 0
    }
    assert cpu_only, "expected a CPU-only worker node type (reward workers / codec decoding)"


def test_head_node_takes_no_tasks(raw):
    head = raw["available_node_types"][raw["head_node_type"]]
    assert head["resources"].get("CPU") == 0
    assert head["resources"].get("GPU", 0) == 0
    assert "--num-cpus=0" in " ".join(raw["head_start_ray_commands"])


def test_setup_installs_project_with_gpu_extra(raw, prepared):
    assert raw["file_mounts"].get("~/tts-align") == "."
    setup = " ".join(raw["setup_commands"])
    assert "cd ~/tts-align" in setup
    assert "pip install -e '.[gpu]'" in setup
    assert "espeak-ng" in setup
    # prepare_config merges the common setup_commands into both head and worker setup.
    for key in ("head_setup_commands", "worker_setup_commands"):
        assert any("pip install -e '.[gpu]'" in c for c in prepared[key])


def test_docker_images_match_pinned_ray(raw):
    import ray

    images = [raw["docker"]["image"], raw["docker"]["head_image"]]
    images += [nt["docker"]["worker_image"] for nt in raw["available_node_types"].values() if "docker" in nt]
    for image in images:
        assert image.startswith(f"rayproject/ray:{ray.__version__}-"), image


# --------------------------------------------------------------------------- negative


def _broken(raw: dict, mutate) -> dict:
    cfg = copy.deepcopy(raw)
    mutate(cfg)
    return cfg


def _misspelled_top_level_key(cfg):
    cfg["max_worker"] = cfg.pop("max_workers")


def _max_workers_wrong_type(cfg):
    cfg["max_workers"] = "twelve"


def _gpu_count_wrong_type(cfg):
    cfg["available_node_types"]["gpu_worker"]["resources"]["GPU"] = "8"


def _unknown_node_type_key(cfg):
    cfg["available_node_types"]["gpu_worker"]["instance_type"] = "p5.48xlarge"


def _node_type_without_node_config(cfg):
    del cfg["available_node_types"]["cpu_worker"]["node_config"]


def _head_node_type_missing(cfg):
    cfg["head_node_type"] = "no_such_type"


def _min_workers_exceed_max_workers(cfg):
    cfg["available_node_types"]["gpu_worker"]["min_workers"] = cfg["max_workers"] + 1


@pytest.mark.parametrize(
    "mutate",
    [
        _misspelled_top_level_key,
        _max_workers_wrong_type,
        _gpu_count_wrong_type,
        _unknown_node_type_key,
        _node_type_without_node_config,
        _head_node_type_missing,
        _min_workers_exceed_max_workers,
    ],
)
def test_broken_config_is_rejected(raw, mutate):
    with pytest.raises((jsonschema.ValidationError, ValueError)):
        ray_validate(_broken(raw, mutate))


def test_misspelled_key_error_names_the_key(raw):
    with pytest.raises(jsonschema.ValidationError, match="max_worker"):
        ray_validate(_broken(raw, _misspelled_top_level_key))
