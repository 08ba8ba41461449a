"""asv.conf.json, constraints.txt and pyproject.toml agree on the pinned stack."""

import re
import tomllib

from conftest import ROOT, asv_conf


def pins(lines):
    return dict(re.match(r"^([A-Za-z0-9_.-]+)==(\S+)$", line.strip()).groups()
                for line in lines if line.strip() and not line.lstrip().startswith("#"))


def test_constraints_match_the_asv_matrix_and_the_harness():
    matrix = asv_conf()["matrix"]["req"]
    constraints = pins((ROOT / "constraints.txt").read_text().splitlines())
    harness = pins(d for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
                   if "==" in d)
    for name, version in constraints.items():
        assert matrix[name] == version, name
        assert harness[name] == version, name
    for name, version in matrix.items():
        if name in harness:
            assert harness[name] == version, name


def test_the_install_command_pins_what_the_harness_pins():
    """Packages asv installs beside stac-manager (outside the matrix: the environment keeps its name)."""
    installed = pins(w for w in asv_conf()["install_command"][0].split() if "==" in w)
    harness = pins(d for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
                   if "==" in d)
    assert installed == {"jsonschema-rs": harness["jsonschema-rs"]}
    assert not set(installed) & set(asv_conf()["matrix"]["req"])


def test_asv_config_builds_with_pip_wheel_and_installs_with_constraints():
    conf = asv_conf()
    assert conf["repo"].endswith("DecentralizedGeo/stac-manager.git")
    assert conf["pythons"] == ["3.12"] and conf["environment_type"] == "virtualenv"
    assert "pip wheel --no-deps" in conf["build_command"][0]
    assert "--constraint {conf_dir}/constraints.txt" in conf["install_command"][0]
    assert {"main", "dev"} <= set(conf["branches"])
    assert "stac-manager" in (ROOT / ".gitignore").read_text()
