"""cluster.yaml: Ray's own schema validation, the same pins as constraints.txt, nothing exposed.

Ray's checks run offline. `prepare_config` merges the AWS defaults shipped with Ray
(`ray/autoscaler/aws/defaults.yaml`) into the config, merges the setup commands and fills
per-type worker limits; `validate_config` checks the result against Ray's
`ray-schema.json` and its cross-field rules. Neither imports boto3 or calls AWS. What
`ray up` does after them needs AWS and is not run here: it fills node resources from
EC2's DescribeInstanceTypes (a failure there is only a warning, and cluster.yaml states
the resources itself), then `bootstrap_aws` checks or creates the IAM profile, key pair,
subnets and security groups and picks the AMI. Both functions are private Ray API; Ray
is pinned in constraints.txt, and the first test checks that the Ray validating here is
that one.

The checks that are not Ray's are functions returning the problems they find; each is run
on cluster.yaml (no problems) and on broken copies of it (the problem is named), so each
can fail.
"""

from __future__ import annotations

import copy
import posixpath
import re
import shlex
import tomllib
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_YAML = ROOT / "cluster.yaml"
CONSTRAINTS = ROOT / "constraints.txt"
PYPROJECT = ROOT / "pyproject.toml"

COMMAND_LISTS = (
    "initialization_commands",
    "setup_commands",
    "head_setup_commands",
    "worker_setup_commands",
)
# pip options that take a value as the next word; any other option is a flag
PIP_VALUE_OPTIONS = {
    "-c", "--constraint", "-r", "--requirement", "-e", "--editable", "-i", "--index-url",
    "--extra-index-url", "-f", "--find-links", "-t", "--target", "--prefix", "--root",
    "--upgrade-strategy", "--src", "--cache-dir", "--platform", "--python-version",
}  # fmt: skip
SHELL_SEPARATORS = {";", "&&", "||", "|", "&", "(", ")"}
REDIRECTIONS = {">", ">>", "<", ">&", "&>", "<<"}
LOOPBACK = {"127.0.0.1", "localhost"}
SECRET_PATTERNS = {
    "an AWS access key id": re.compile(r"aws_access_key_id", re.IGNORECASE),
    "an AWS secret key": re.compile(r"aws_secret_access_key|secret_?key", re.IGNORECASE),
    "an AWS session token": re.compile(r"aws_session_token", re.IGNORECASE),
    "an AWS key id value": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "a private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "a Ray token value": re.compile(r"RAY_AUTH_TOKEN\s*[=:]", re.IGNORECASE),
    "credentials in the provider": re.compile(r"^\s*aws_credentials\s*:", re.MULTILINE),
}
IMAGE_TAG = re.compile(
    r"^rayproject/ray:(?P<ray>\d+\.\d+\.\d+)-py(?P<major>\d)(?P<minor>\d+)-(?P<platform>gpu|cu\d+)$"
)


# ---------------------------------------------------------------------------- reading


def load_raw() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def prepared(raw: dict) -> dict:
    """What `ray up` validates: the config with Ray's AWS defaults filled in."""
    config = prepare_config(copy.deepcopy(raw))
    validate_config(config)
    return config


def constraint_pins() -> dict[str, str]:
    """constraints.txt as {canonical name: the version its `==` pins}."""
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        exact = [s.version for s in requirement.specifier if s.operator == "=="]
        assert len(exact) == 1, f"constraints.txt: {line!r} pins no single version"
        pins[canonicalize_name(requirement.name)] = exact[0]
    return pins


def project_python() -> str:
    """The project's Python, major.minor: the lower bound of requires-python."""
    requires = tomllib.loads(PYPROJECT.read_text())["project"]["requires-python"]
    lower = [s.version for s in SpecifierSet(requires) if s.operator in (">=", "==", "~=")]
    assert len(lower) == 1, f"requires-python {requires!r}: no single lower bound"
    return ".".join(lower[0].split(".")[:2])


def setup_commands(config: dict) -> list[tuple[str, str]]:
    """(where, command) for every command run while setting a node up."""
    found = [(key, cmd) for key in COMMAND_LISTS for cmd in config.get(key) or []]
    for name, node_type in config.get("available_node_types", {}).items():
        for key in ("initialization_commands", "worker_setup_commands"):
            found += [(f"{name}.{key}", cmd) for cmd in node_type.get(key) or []]
    return found


def pip_installs(command: str) -> list[list[str]]:
    """The arguments of each `pip install` in a shell command line."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    segments, current, redirected = [], [], False
    for token in lexer:
        if token in SHELL_SEPARATORS:
            segments.append(current)
            current = []
        elif token in REDIRECTIONS:
            redirected = True  # the next word is a file name, not an argument
            if current and current[-1].isdigit():  # 2>&1: the 2 is the descriptor
                current.pop()
        elif redirected:
            redirected = False
        else:
            current.append(token)
    segments.append(current)
    installs = []
    for words in segments:
        for i, word in enumerate(words):
            if posixpath.basename(word) in ("pip", "pip3") or (
                word == "-m" and i + 1 < len(words) and words[i + 1] in ("pip", "pip3")
            ):
                start = i + 1 if word != "-m" else i + 2
                if start < len(words) and words[start] == "install":
                    installs.append(words[start + 1 :])
                break
    return installs


def mounted_local_path(config: dict, remote: str) -> Path | None:
    """The local file that `file_mounts` copies to `remote` on the nodes (None: none)."""
    remote = posixpath.normpath(remote)
    for mount_remote, mount_local in (config.get("file_mounts") or {}).items():
        mount_remote = posixpath.normpath(mount_remote)
        if remote == mount_remote or remote.startswith(mount_remote + "/"):
            rest = posixpath.relpath(remote, mount_remote)
            local = Path(mount_local).expanduser()
            local = local if local.is_absolute() else ROOT / local  # `ray up` runs in ROOT
            return (local / rest).resolve()
    return None


# ---------------------------------------------------------------------------- checks


def pin_problems(config: dict, pins: dict[str, str]) -> list[str]:
    """Every pip install on the nodes must take the project's constraints.txt (through the
    file mounts) with -c, install only packages that file pins, and pin any version it
    states to the same one."""
    problems = []
    for where, command in setup_commands(config):
        for args in pip_installs(command):
            constraints, i = [], 0
            while i < len(args):
                arg = args[i]
                option, _, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
                if arg.startswith("-c") and len(arg) > 2:
                    option, inline = "-c", arg[2:]
                if option in PIP_VALUE_OPTIONS:
                    value = inline or (args[i + 1] if i + 1 < len(args) else "")
                    i += 1 if inline else 2
                    if option in ("-c", "--constraint"):
                        constraints.append(value)
                    elif option in ("-r", "--requirement"):
                        problems.append(f"{where}: requirement file {value} is not checked")
                    elif option in ("-e", "--editable"):
                        local = mounted_local_path(config, value)
                        if local != ROOT:
                            problems.append(f"{where}: -e {value} is not the mounted project")
                    continue
                i += 1
                if arg.startswith("-"):
                    continue
                try:
                    requirement = Requirement(arg)
                except InvalidRequirement:
                    problems.append(f"{where}: cannot check {arg!r} (not a requirement)")
                    continue
                name = canonicalize_name(requirement.name)
                if name not in pins:
                    problems.append(f"{where}: {requirement.name} is not in constraints.txt")
                    continue
                stated = [s for s in requirement.specifier if s.operator != "!="]
                if stated and [(s.operator, s.version) for s in stated] != [("==", pins[name])]:
                    problems.append(
                        f"{where}: {requirement.name} {requirement.specifier} differs from "
                        f"constraints.txt's =={pins[name]}"
                    )
            if not constraints:
                problems.append(f"{where}: pip install without -c constraints.txt: {command}")
            for path in constraints:
                if mounted_local_path(config, path) != CONSTRAINTS:
                    problems.append(f"{where}: -c {path} is not the project's constraints.txt")
    return problems


def image_problems(config: dict, ray_version: str, python: str) -> list[str]:
    """Every image is a rayproject/ray GPU image of the pinned Ray and the project's Python."""
    docker = config.get("docker") or {}
    images = {key: docker[key] for key in ("image", "head_image", "worker_image") if key in docker}
    for name, node_type in config.get("available_node_types", {}).items():
        if "worker_image" in (node_type.get("docker") or {}):
            images[f"{name}.worker_image"] = node_type["docker"]["worker_image"]
    if "image" not in images:
        return ["docker.image is not set: nodes would run on the bare AMI"]
    problems = []
    for key, image in images.items():
        match = IMAGE_TAG.match(image)
        if not match:
            problems.append(f"{key} {image!r} is not rayproject/ray:VERSION-pyXY-gpu|cuXY")
            continue
        if match["ray"] != ray_version:
            problems.append(f"{key} {image!r}: Ray {match['ray']}, pinned {ray_version}")
        image_python = f"{match['major']}.{match['minor']}"
        if image_python != python:
            problems.append(f"{key} {image!r}: Python {image_python}, project {python}")
    return problems


def secret_problems(text: str) -> list[str]:
    return [f"cluster.yaml holds {what}" for what, p in SECRET_PATTERNS.items() if p.search(text)]


def exposure_problems(config: dict) -> list[str]:
    """The dashboard binds the loopback only (reached by `ray dashboard` over SSH), and
    every node type uses the user's own security group: without SecurityGroupIds, Ray
    2.60 creates a group that opens SSH to 0.0.0.0/0."""
    problems = []
    for command in config.get("head_start_ray_commands") or []:
        if "ray start" in command and "--head" in command:
            hosts = re.findall(r"--dashboard-host[= ]+(\S+)", command)
            if not hosts:
                problems.append("ray start --head without --dashboard-host=127.0.0.1")
            problems += [
                f"the dashboard listens on {h} (not the loopback)"
                for h in hosts
                if h.strip("'\";") not in LOOPBACK
            ]
    for name, node_type in config["available_node_types"].items():
        if not node_type["node_config"].get("SecurityGroupIds"):
            problems.append(f"{name}: no SecurityGroupIds (Ray would open SSH to 0.0.0.0/0)")
    rules = (config["provider"].get("security_group") or {}).get("IpPermissions") or []
    for rule in rules:
        wide = [r.get("CidrIp") for r in rule.get("IpRanges", [])] + [
            r.get("CidrIpv6") for r in rule.get("Ipv6Ranges", [])
        ]
        if {"0.0.0.0/0", "::/0"} & set(wide):
            problems.append(f"provider.security_group opens {rule} to everyone")
    return problems


def token_problems(config: dict) -> list[str]:
    """Ray 2.60's `ray start --head` runs without authentication unless a token exists
    or RAY_AUTH_MODE=token: the start commands set the mode, and the token reaches
    every node through the file mounts."""
    problems = []
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        for command in config.get(key) or []:
            if "ray start" in command and "RAY_AUTH_MODE=token" not in command:
                problems.append(f"{key}: ray start without RAY_AUTH_MODE=token")
    mounts = {
        posixpath.normpath(remote): local
        for remote, local in (config.get("file_mounts") or {}).items()
    }
    if mounts.get("~/.ray/auth_token") != "~/.ray/auth_token":
        problems.append("file_mounts: the Ray token (~/.ray/auth_token) is not copied")
    return problems


def resource_problems(config: dict) -> list[str]:
    """Resources stated for every node type: the head with GPU 0 (no trial lands there),
    each worker with one GPU, scaling down to none."""
    problems = []
    head = config["head_node_type"]
    for name, node_type in config["available_node_types"].items():
        resources = node_type.get("resources") or {}
        missing = [r for r in ("CPU", "GPU") if r not in resources]
        if missing:
            problems.append(f"{name}: resources do not state {', '.join(missing)}")
        expected_gpus = 0 if name == head else 1
        if resources.get("GPU", expected_gpus) != expected_gpus:
            problems.append(f"{name}: GPU {resources['GPU']}, expected {expected_gpus}")
        if name != head and node_type.get("min_workers", 0) != 0:
            problems.append(f"{name}: min_workers {node_type['min_workers']}, expected 0")
        if not node_type["node_config"].get("IamInstanceProfile"):
            problems.append(f"{name}: no IamInstanceProfile (no S3 access without keys)")
    return problems


def lifecycle_problems(config: dict) -> list[str]:
    """Idle workers end and ended nodes are terminated, stated in the file rather than
    left to Ray's defaults (which stop nodes, keeping their disks billed)."""
    problems = []
    idle = config.get("idle_timeout_minutes")
    if idle is None or not 1 <= idle <= 30:
        problems.append(f"idle_timeout_minutes {idle}, expected 1 to 30")
    if config["provider"].get("cache_stopped_nodes") is not False:
        problems.append("provider.cache_stopped_nodes: not false (stopped nodes stay billed)")
    return problems


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def raw() -> dict:
    return load_raw()


@pytest.fixture(scope="module")
def config(raw) -> dict:
    return prepared(raw)


@pytest.fixture(scope="module")
def pins() -> dict[str, str]:
    return constraint_pins()


def broken(raw: dict, change) -> dict:
    """A copy of cluster.yaml with `change` applied, prepared as `ray up` would."""
    copied = copy.deepcopy(raw)
    change(copied)
    return prepare_config(copied)


# ---------------------------------------------------------------------------- tests


def test_ray_schema_accepts_cluster_yaml(raw, pins):
    """`prepare_config` then `validate_config` (which `ray up` runs first) accept the file,
    with the Ray that constraints.txt pins."""
    assert ray.__version__ == pins["ray"], "validate with the pinned Ray"
    validate_config(prepare_config(copy.deepcopy(raw)))


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c.update(dashboard_port=8265),  # no such field
        lambda c: c["available_node_types"]["head"]["resources"].update(GPU="0"),  # a string
        lambda c: c["available_node_types"]["gpu-worker"].update(min_workers=9),  # > max
    ],
    ids=["unknown-field", "resource-not-integer", "min-over-max"],
)
def test_ray_schema_rejects_broken_copies(raw, change):
    with pytest.raises((jsonschema.ValidationError, ValueError)):
        validate_config(broken(raw, change))


def test_setup_commands_pin_what_constraints_pin(config, pins):
    assert pin_problems(config, pins) == []
    # the setup installs the project from the mounted code, constrained by its own file
    pip_args = [a for _, cmd in setup_commands(config) for a in pip_installs(cmd)]
    assert any("-e" in args for args in pip_args), "no pip install -e of the project"


@pytest.mark.parametrize(
    ("extra_command", "named"),
    [
        ("pip install -c ~/polarmap-search/constraints.txt 'torch==2.12.0'", "torch"),
        ("pip install -c ~/polarmap-search/constraints.txt 'timm>=1.0'", "timm"),
        ("python -m pip install -c ~/polarmap-search/constraints.txt requests", "requests"),
        ("cd /tmp && pip install --quiet 'ray[default]==2.60.0'", "without -c"),
        ("pip install -c ~/elsewhere/constraints.txt boto3", "~/elsewhere"),
        ("pip install -c ~/polarmap-search/constraints.txt -e ~/other", "-e ~/other"),
        ("pip install -c ~/polarmap-search/constraints.txt -r reqs.txt", "reqs.txt"),
    ],
    ids=["other-version", "not-exact", "not-in-constraints", "no-c", "other-file", "other-e",
         "requirement-file"],
)  # fmt: skip
def test_a_different_pin_is_named(raw, pins, extra_command, named):
    config = broken(raw, lambda c: c["head_setup_commands"].append(extra_command))
    problems = pin_problems(config, pins)
    assert problems and all(named in p for p in problems), problems


def test_a_changed_constraint_is_caught(config, pins):
    """If constraints.txt moved on and a setup command kept the old version, it fails."""
    config = copy.deepcopy(config)
    config["setup_commands"].append(
        f"pip install -c ~/polarmap-search/constraints.txt numpy=={pins['numpy']}"
    )
    assert pin_problems(config, pins) == []
    assert any("numpy" in p for p in pin_problems(config, {**pins, "numpy": "0.0.1"}))


def test_image_is_the_pinned_ray_and_python(config, pins):
    assert project_python() == "3.11"
    assert image_problems(config, pins["ray"], project_python()) == []


@pytest.mark.parametrize(
    ("image", "named"),
    [
        ("rayproject/ray:2.59.0-py311-gpu", "Ray 2.59.0"),
        ("rayproject/ray:2.60.0-py310-gpu", "Python 3.10"),
        ("rayproject/ray-ml:2.60.0-py311-gpu", "is not rayproject/ray"),
        ("rayproject/ray:2.60.0-py311-cpu", "is not rayproject/ray"),
        ("rayproject/ray:latest-gpu", "is not rayproject/ray"),
    ],
)
def test_a_wrong_image_is_named(config, pins, image, named):
    for key in ("image", "worker_image"):
        changed = copy.deepcopy(config)
        changed["docker"][key] = image
        problems = image_problems(changed, pins["ray"], project_python())
        assert problems and named in problems[0], problems


def test_no_secrets_in_the_file():
    assert secret_problems(CLUSTER_YAML.read_text()) == []


@pytest.mark.parametrize(
    "line",
    [
        "aws_access_key_id: AKIAABCDEFGHIJKLMNOP",
        "# aws_secret_access_key = abc",
        "  aws_credentials:",
        "export RAY_AUTH_TOKEN=abc",
        "-----BEGIN RSA PRIVATE KEY-----",
    ],
)
def test_a_secret_is_found(line):
    assert secret_problems(CLUSTER_YAML.read_text() + "\n" + line + "\n")


def test_nothing_is_exposed(config):
    assert exposure_problems(config) == []
    assert token_problems(config) == []


def _drop_head_start(c):
    del c["head_start_ray_commands"]  # Ray's default starts with --dashboard-host=0.0.0.0


def _public_dashboard(c):
    c["head_start_ray_commands"][-1] += " --dashboard-host=0.0.0.0"


def _ray_made_group(c):
    del c["available_node_types"]["gpu-worker"]["node_config"]["SecurityGroupIds"]


def _open_rule(c):
    c["provider"]["security_group"] = {
        "IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
             "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        ]
    }  # fmt: skip


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (_drop_head_start, "0.0.0.0"),
        (_public_dashboard, "0.0.0.0"),
        (_ray_made_group, "gpu-worker: no SecurityGroupIds"),
        (_open_rule, "to everyone"),
    ],
    ids=["ray-default-start", "public-dashboard", "ray-made-group", "open-rule"],
)
def test_an_exposure_is_found(raw, change, named):
    problems = exposure_problems(broken(raw, change))
    assert any(named in p for p in problems), problems


def test_a_missing_token_setting_is_found(raw):
    def no_mode(c):
        c["worker_start_ray_commands"] = ["ray start --address=$RAY_HEAD_IP:6379"]

    def no_token(c):
        del c["file_mounts"]["~/.ray/auth_token"]

    assert any("worker_start" in p for p in token_problems(broken(raw, no_mode)))
    assert any("token" in p for p in token_problems(broken(raw, no_token)))
    # Ray's own default start commands set no mode
    assert token_problems(broken(raw, _drop_head_start))


def test_head_has_no_gpu_and_workers_one(config):
    assert resource_problems(config) == []
    head = config["available_node_types"][config["head_node_type"]]
    assert head["resources"]["GPU"] == 0
    workers = [t for n, t in config["available_node_types"].items() if n != "head"]
    assert workers and all(t["resources"]["GPU"] == 1 for t in workers)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda c: c["available_node_types"]["head"]["resources"].update(GPU=1), "head: GPU 1"),
        (lambda c: c["available_node_types"]["head"]["resources"].pop("GPU"), "state GPU"),
        (lambda c: c["available_node_types"]["gpu-worker"]["resources"].update(GPU=2), "GPU 2"),
        (lambda c: c["available_node_types"]["gpu-worker"].update(min_workers=1), "min_workers"),
        (lambda c: c["available_node_types"]["gpu-worker"]["node_config"].pop(
            "IamInstanceProfile"), "IamInstanceProfile"),
    ],
    ids=["head-gpu", "head-gpu-unstated", "worker-2-gpus", "min-workers", "no-profile"],
)  # fmt: skip
def test_a_wrong_resource_is_named(raw, change, named):
    problems = resource_problems(broken(raw, change))
    assert any(named in p for p in problems), problems


def test_idle_workers_end_and_ended_nodes_are_terminated(raw):
    assert lifecycle_problems(raw) == []


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda c: c.pop("idle_timeout_minutes"), "idle_timeout_minutes None"),
        (lambda c: c.update(idle_timeout_minutes=120), "idle_timeout_minutes 120"),
        (lambda c: c["provider"].pop("cache_stopped_nodes"), "cache_stopped_nodes"),
    ],
    ids=["idle-unstated", "idle-too-long", "nodes-stopped"],
)  # fmt: skip
def test_a_lifecycle_left_to_defaults_is_named(raw, change, named):
    changed = copy.deepcopy(raw)
    change(changed)
    problems = lifecycle_problems(changed)
    assert any(named in p for p in problems), problems
