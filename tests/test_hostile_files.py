"""Hostile model files and bioimage.io packages are refused fast, without the memory.

The hostile inputs are generated here (nothing is downloaded): a YAML "billion laughs"
alias bomb in a package's rdf.yaml, a package declaring a huge U-Net, zip bombs in a
package's weights and test tensors and in a model file's members, model files declaring a
huge architecture or members that overlap, and weights with NaN / inf. Each is checked for
its refusal *message*; :func:`test_hostile_files_are_refused_within_2_s_and_300_mb` loads
the worst of them in a fresh process and measures the time and the peak memory it took.

The builders (``build_*``, :func:`hostile_cases`) are shared with
``benchmarks/bench_hostile_files.py``.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_unet import CheckpointError, UNet, load_model, save_model
from napari_unet.interchange import yaml_limits
from napari_unet.interchange.bioimageio import PackageError
from napari_unet.interchange.yaml_limits import YamlLimitError, safe_load_limited
from napari_unet.io.checkpoint import read_checkpoint

MIB = 1 << 20
#: what a hostile file may cost to refuse (the issue's goals)
MAX_SECONDS, MAX_RSS_GROWTH_MB = 2.0, 300.0
#: uncompressed size of the zip bombs: far more than the memory goal
BOMB_BYTES = 1 << 30


# ------------------------------------------------------------------------ zip building
Member = tuple[str, bytes, int, int, int]  # name, payload as stored, method, crc, size


def stored(name: str, data: bytes) -> Member:
    return name, data, zipfile.ZIP_STORED, zlib.crc32(data), len(data)


def deflated(name: str, data: bytes) -> Member:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return name, c.compress(data) + c.flush(), zipfile.ZIP_DEFLATED, zlib.crc32(data), len(data)


def zeros_bomb(name: str, size: int = BOMB_BYTES) -> Member:
    """A valid deflated member of ``size`` zero bytes (a multiple of 1 MiB) in about a
    megabyte, built in milliseconds: after a full flush the compressor's output for the
    next identical MiB is the same bytes, so it is repeated rather than recomputed."""
    chunk, n = bytes(MIB), size // MIB
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    payload = first + again * (n - 1) + c.flush()
    crc = 0
    for _ in range(n):
        crc = zlib.crc32(chunk, crc)
    return name, payload, zipfile.ZIP_DEFLATED, crc, n * MIB


def write_zip(path: Path, members: list[Member], directory: list[Member] | None = None) -> Path:
    """Write a zip of ``members`` byte by byte (zipfile cannot write pre-compressed data).

    ``directory`` (default: the members) is what the central directory lists: extra
    entries there point at the first member's data (overlapping members)."""
    with open(path, "wb") as f:
        offsets = []
        for name, payload, method, crc, size in members:
            offsets.append(f.tell())
            raw = name.encode()
            f.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc,
                                len(payload), size, len(raw), 0))  # fmt: skip
            f.write(raw + payload)
        start = f.tell()
        entries = directory if directory is not None else members
        for i, (name, payload, method, crc, size) in enumerate(entries):
            raw = name.encode()
            offset = offsets[i] if i < len(offsets) else offsets[0]
            f.write(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc,
                                len(payload), size, len(raw), 0, 0, 0, 0, 0, offset))  # fmt: skip
            f.write(raw)
        end = f.tell()
        f.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                            end - start, start, 0))  # fmt: skip
    return path


def members_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


# ------------------------------------------------------------------------ model files
def tiny_model() -> UNet:
    torch.manual_seed(0)
    return UNet(depth=2, base_channels=4, batch_norm=True).eval()


def build_model_file(folder: Path) -> Path:
    return save_model(folder / "model.pt", tiny_model())


def _largest_tensor_member(files: dict[str, bytes]) -> str:
    data = [n for n in files if "/data/" in n and not n.endswith(".pkl")]
    return max(data, key=lambda n: len(files[n]))


def build_pt_bomb(folder: Path) -> Path:
    """A model file whose largest tensor's data is a deflated member of 1 GiB of zeros."""
    good = build_model_file(folder)
    files = members_of(good)
    victim = _largest_tensor_member(files)
    members = [zeros_bomb(n) if n == victim else stored(n, d) for n, d in files.items()]
    return write_zip(folder / "bomb.pt", members)


def build_pt_overlapping(folder: Path) -> Path:
    """A model file whose directory lists 200 extra members all pointing at the same data."""
    good = build_model_file(folder)
    members = [stored(n, d) for n, d in members_of(good).items()]
    big = max(members, key=lambda m: m[4])
    extra = [(f"archive/data/copy{i}", *big[1:]) for i in range(200)]
    return write_zip(folder / "overlapping.pt", members, members + extra)


def build_pt_huge_architecture(folder: Path, base_channels: int = 4096) -> Path:
    """A model file whose record declares ``base_channels`` (the tiny weights)."""
    model = tiny_model()
    config = json.loads(model.record.to_json())
    config["architecture"]["base_channels"] = base_channels
    path = folder / f"base{base_channels}.pt"
    torch.save(
        {"format": "napari-unet", "format_version": 2, "config": json.dumps(config),
         "state_dict": model.state_dict()},
        path,
    )  # fmt: skip
    return path


# ------------------------------------------------------------------------ packages
PACKAGE_NAME, PACKAGE_DESCRIPTION = "tiny hostile U-Net", "A tiny U-Net for hostile-file tests."


def build_package(folder: Path) -> Path:
    """A valid package of a tiny U-Net (zip), exported by napari-unet."""
    from napari_unet.interchange.bioimageio import export_bioimageio

    rng = np.random.default_rng(0)
    image = rng.gamma(2.0, 50.0, (64, 64)).astype(np.uint16)
    path = folder / "package.zip"
    export_bioimageio(
        tiny_model(), path, name=PACKAGE_NAME, description=PACKAGE_DESCRIPTION, test_image=image
    )
    return path


def yaml_bomb(levels: int = 9, width: int = 9, prefix: str = "lol") -> str:
    """A "billion laughs": ``levels`` anchors, each a list of ``width`` aliases of the one
    before (``width ** levels`` scalars once expanded)."""
    lines = [f"{prefix}0: &{prefix}0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"{prefix}{i}: &{prefix}{i} [{', '.join([f'*{prefix}{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def bomb_nodes(levels: int, width: int) -> int:
    """The expanded node count of ``yaml_bomb(levels, width)`` (closed form)."""
    size, total = 1 + width, 1  # level 0; the root mapping
    for _ in range(levels):
        total += 1 + size  # the key and its list
        size = 1 + width * size
    return total


def repack(
    src: Path,
    out: Path,
    replace: dict[str, Member] | None = None,
    edit: Callable[[dict], None] | None = None,
    rdf_text: str | None = None,
) -> Path:
    """A copy of package ``src`` with members replaced, its rdf.yaml edited (parsed and
    dumped with PyYAML) or replaced by ``rdf_text``."""
    import yaml

    files = members_of(src)
    rdf = files["rdf.yaml"].decode()
    if edit is not None:
        content = yaml.safe_load(rdf)
        edit(content)
        rdf = yaml.safe_dump(content, sort_keys=False)
    if rdf_text is not None:
        rdf = rdf_text
    replace = replace or {}
    members = [
        replace[n] if n in replace else deflated(n, rdf.encode() if n == "rdf.yaml" else d)
        for n, d in files.items()
    ]
    members += [m for n, m in replace.items() if n not in files]
    return write_zip(out, members)


def _kwargs(**values: object) -> Callable[[dict], None]:
    def edit(c: dict) -> None:
        c["weights"]["pytorch_state_dict"]["architecture"]["kwargs"].update(values)

    return edit


def build_package_yaml_bomb(folder: Path, package: Path) -> Path:
    """The package with a 1.5 KB billion-laughs bomb appended to its rdf.yaml."""
    rdf = members_of(package)["rdf.yaml"].decode()
    return repack(package, folder / "yaml_bomb.zip", rdf_text=rdf + yaml_bomb(9, 9))


def build_package_huge_architecture(folder: Path, package: Path) -> Path:
    return repack(package, folder / "huge_arch.zip", edit=_kwargs(base_channels=4096))


def build_package_weights_bomb(folder: Path, package: Path) -> Path:
    """The package whose weights.pt member unpacks to 1 GiB of zeros."""
    return repack(package, folder / "weights_bomb.zip", {"weights.pt": zeros_bomb("weights.pt")})


def build_package_test_tensor_bomb(folder: Path, package: Path) -> Path:
    return repack(
        package, folder / "test_bomb.zip", {"test_input.npy": zeros_bomb("test_input.npy")}
    )


#: the cases measured in a fresh process: name -> (build, "model" / "package", message)
HOSTILE_CASES: dict[str, tuple[Callable[..., Path], str, str]] = {
    "model file declaring 4096 base channels": (
        lambda folder, package: build_pt_huge_architecture(folder),
        "model",
        r"base_channels",
    ),
    "model file with a deflated 1 GiB member": (
        lambda folder, package: build_pt_bomb(folder),
        "model",
        r"not a napari-unet model file: compressed member archive/data/\d+ .*a zip bomb\?",
    ),
    "package with a YAML alias bomb (1.5 KB rdf.yaml)": (
        build_package_yaml_bomb,
        "package",
        r"rdf\.yaml: refused: its aliases expand to more than 100,000 nodes \(a YAML bomb\?\)",
    ),
    "package declaring 4096 base channels": (
        build_package_huge_architecture,
        "package",
        r"base_channels",
    ),
    "package whose weights are a 1 GiB zip bomb": (
        build_package_weights_bomb,
        "package",
        r"weights file weights\.pt declares 1,073,741,824 bytes.*a zip bomb\?",
    ),
    "package whose test input is a 1 GiB zip bomb": (
        build_package_test_tensor_bomb,
        "package",
        r"test input test_input\.npy declares 1,073,741,824 bytes.*a zip bomb\?",
    ),
}

#: run in a fresh process: imports first, then the timed and measured load
CHILD = r"""
import json, resource, sys, time

def peak_mb():
    # VmHWM: this process's own peak (ru_maxrss can carry the parent's peak across exec)
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024

kind, path = sys.argv[1], sys.argv[2]
import napari_unet
if kind == "package":
    import bioimageio.spec
    from napari_unet.interchange.bioimageio import import_bioimageio as load
else:
    from napari_unet import load_model as load
before = peak_mb()
t0 = time.perf_counter()
try:
    load(path)
    error, message = None, None
except Exception as err:
    error, message = type(err).__name__, str(err)
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "rss_growth_mb": peak_mb() - before,
                  "error": error, "message": message}))
"""


def measure_load(kind: str, path: Path, timeout: float = 120) -> dict:
    """Load ``path`` (``kind`` "model" or "package") in a fresh process: its time, peak
    memory growth, and the error it raised (``error`` None if it loaded)."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(path)],
        capture_output=True, text=True, timeout=timeout, cwd=path.parent,
    )  # fmt: skip
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stderr[-2000:]
    return json.loads(lines[-1])


def _spec():
    return pytest.importorskip("bioimageio.spec")


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    _spec()
    pytest.importorskip("yaml")
    return build_package(tmp_path_factory.mktemp("package"))


def _import(path: Path, **kwargs):
    from napari_unet.interchange.bioimageio import import_bioimageio

    return import_bioimageio(path, **kwargs)


# ------------------------------------------------------------------------ the YAML limits
def test_an_exported_description_reads_as_plain_yaml(package):
    import yaml

    text = members_of(package)["rdf.yaml"]
    assert safe_load_limited(text, what="rdf.yaml") == yaml.safe_load(text)


@settings(max_examples=60, deadline=None)
@given(levels=st.integers(1, 12), width=st.integers(1, 12))
def test_alias_bombs_are_refused_exactly_beyond_the_node_limit(levels, width):
    text = yaml_bomb(levels, width)
    nodes = bomb_nodes(levels, width)
    if nodes > yaml_limits.MAX_NODES:
        with pytest.raises(YamlLimitError, match="rdf.yaml: refused: its aliases expand to "
                           "more than 100,000 nodes"):  # fmt: skip
            safe_load_limited(text, what="rdf.yaml")
    else:
        data = safe_load_limited(text, what="rdf.yaml")
        assert len(data) == levels
        leaf = data[f"lol{levels - 1}"]
        for _ in range(levels - 1):
            assert len(leaf) == width
            leaf = leaf[0]
        assert leaf == ["lol"] * width


@settings(max_examples=40, deadline=None)
@given(depth=st.integers(1, 400), block=st.booleans(), via_alias=st.booleans())
def test_deep_nesting_is_refused_beyond_the_depth_limit(depth, block, via_alias):
    """Nested lists (flow or block style), directly or split in two halves joined by an
    alias: refused exactly when the nesting, aliases expanded, passes the limit."""
    if via_alias:
        inner, outer = depth // 2, depth - depth // 2
        text = f"a: &a {'[' * inner}{']' * inner}\nb: {'[' * outer}*a{']' * outer}\n"
        levels = 1 + outer + inner  # the root mapping, b's lists, a's lists
        if inner == 0:  # *a is the scalar null: one level for it
            levels += 1
    elif block:
        text = "x:\n" + "".join("  " * i + "-\n" for i in range(1, depth)) + "  " * depth + "- 1\n"
        levels = 1 + depth + 1  # the mapping, the lists, the scalar
    else:
        text = "x: " + "[" * depth + "]" * depth
        levels = 1 + depth
    if levels > yaml_limits.MAX_DEPTH:
        with pytest.raises(YamlLimitError, match="refused: it nests deeper than 100 levels"):
            safe_load_limited(text, what="rdf.yaml")
    else:
        data = safe_load_limited(text, what="rdf.yaml")
        assert isinstance(data, dict)


@pytest.mark.parametrize(
    "text,reason",
    [
        ("a: &a [1, *a]\n", "an alias refers to a node that contains it"),
        ("a: &a x\nb: [" + ", ".join(["*a"] * 1001) + "]\n", "more than 1,000 aliases"),
        ("x: [" + ", ".join(["0"] * 100_001) + "]\n", "it has more than 100,000 nodes"),
        ("- type: model\n", "its top level is a sequence, not a mapping"),
        ("just text\n", "its top level is a scalar, not a mapping"),
        ("", "it is empty"),
        ("type: model\n---\ntype: model\n", "more than one YAML document"),
        ("x: !!python/object/apply:os.system [echo]\n", "cannot read rdf.yaml: not valid YAML"),
        ("x: [unclosed\n", "cannot read rdf.yaml: not valid YAML: .*line"),
    ],
)
def test_other_hostile_yaml_is_refused(text, reason):
    with pytest.raises(YamlLimitError, match=reason):
        safe_load_limited(text, what="rdf.yaml")


# ------------------------------------------------------------------------ packages
def test_package_with_a_yaml_bomb_is_refused_before_the_spec_reads_it(package, tmp_path):
    bomb = build_package_yaml_bomb(tmp_path, package)
    assert len(members_of(bomb)["rdf.yaml"]) - len(members_of(package)["rdf.yaml"]) < 1600
    t0 = time.perf_counter()
    with pytest.raises(PackageError, match="yaml_bomb.zip: rdf.yaml: refused: its aliases expand"):
        _import(bomb)
    assert time.perf_counter() - t0 < MAX_SECONDS
    # the same in a folder, and a bomb in another description the spec could choose
    folder = tmp_path / "folder"
    with zipfile.ZipFile(bomb) as z:
        z.extractall(folder)
    with pytest.raises(PackageError, match="rdf.yaml: refused: its aliases expand"):
        _import(folder)
    other = repack(package, tmp_path / "other.zip", {"x.model.yaml": stored("x.model.yaml",
                   ("type: model\n" + yaml_bomb()).encode())})  # fmt: skip
    with pytest.raises(PackageError, match="x.model.yaml: refused: its aliases expand"):
        _import(other)


def test_package_with_an_oversized_description_is_refused(package, tmp_path):
    rdf = members_of(package)["rdf.yaml"].decode()
    big = repack(package, tmp_path / "big.zip", rdf_text=rdf + "# " + "x" * (2 * MIB) + "\n")
    with pytest.raises(
        PackageError, match=r"rdf\.yaml is 2,[\d,]+ bytes, more than the 1,048,576"
    ):
        _import(big)


@pytest.mark.parametrize(
    "kwargs,reason",
    [
        ({"base_channels": 4096}, r"architecture kwargs\.base_channels"),
        ({"depth": 9}, r"architecture kwargs\.depth"),
        ({"depth": 8, "base_channels": 1024}, r"parameters, more than the 268,435,456 allowed"),
        ({"in_channels": 0}, r"architecture kwargs\.in_channels"),
    ],
)
def test_package_declaring_a_huge_architecture_is_refused(package, tmp_path, kwargs, reason):
    path = repack(package, tmp_path / "arch.zip", edit=_kwargs(**kwargs))
    with pytest.raises(
        PackageError, match=f"arch.zip: unknown or invalid architecture: .*{reason}"
    ):
        _import(path)


def test_package_whose_weights_are_a_zip_bomb_is_refused(package, tmp_path):
    path = build_package_weights_bomb(tmp_path, package)
    with pytest.raises(PackageError, match=r"the weights file weights\.pt declares 1,073,741,824 "
                       r"bytes, more than the [\d,]+ float32 weights"):  # fmt: skip
        _import(path)


def test_package_weights_with_a_compressed_member_are_refused(package, tmp_path):
    inner = members_of(package)["weights.pt"]
    files = members_of_bytes(inner)
    victim = _largest_tensor_member(files)
    buffer = tmp_path / "w.pt"
    write_zip(buffer, [deflated(n, d) if n == victim else stored(n, d) for n, d in files.items()])
    data = buffer.read_bytes()
    buffer.unlink()

    def edit(c):
        c["weights"]["pytorch_state_dict"]["sha256"] = hashlib.sha256(data).hexdigest()

    path = repack(package, tmp_path / "inner.zip", {"weights.pt": deflated("weights.pt", data)},
                  edit=edit)  # fmt: skip
    with pytest.raises(PackageError, match=r"inner\.zip: weights\.pt: not PyTorch weights as "
                       r"torch\.save writes them: compressed member .*a zip bomb\?"):  # fmt: skip
        _import(path)


def members_of_bytes(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {name: z.read(name) for name in z.namelist()}


def test_package_whose_test_tensors_are_zip_bombs_is_refused(package, tmp_path):
    for member, what in [("test_input.npy", "test input"), ("test_output.npy", "test output")]:
        path = repack(package, tmp_path / f"{member}.zip", {member: zeros_bomb(member)})
        with pytest.raises(
            PackageError, match=rf"the {what} {member} declares 1,073,741,824 bytes"
        ):
            _import(path)
        # not read at all without the test-output check
        assert _import(path, check_test_outputs=False).n_classes == 2


def test_package_whose_test_tensor_header_lies_is_refused(package, tmp_path):
    """A .npy header declaring a 10^10-pixel array over a few bytes of data."""
    header = {"descr": "<f4", "fortran_order": False, "shape": (1, 1, 100_000, 100_000)}
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    data = buffer.getvalue() + bytes(64)

    def edit(c):
        c["inputs"][0]["test_tensor"]["sha256"] = hashlib.sha256(data).hexdigest()

    path = repack(package, tmp_path / "lie.zip", {"test_input.npy":
                  deflated("test_input.npy", data)}, edit=edit)  # fmt: skip
    with pytest.raises(PackageError, match=r"test_input\.npy is not a \.npy array: its header "
                       r"declares a \(1, 1, 100000, 100000\) float32 array"):  # fmt: skip
        _import(path)


def test_repacked_package_still_imports(package, tmp_path):
    """The builders themselves produce packages that import (so each refusal above is the
    hostile part's doing)."""
    path = repack(package, tmp_path / "same.zip")
    assert _import(path).config() == tiny_model().config()


# ------------------------------------------------------------------------ model files
def test_saved_and_bundled_model_files_store_every_member_uncompressed(tmp_path):
    bundled = Path(__import__("napari_unet").__file__).parent / "pretrained" / "nuclei.pt"
    for path in [build_model_file(tmp_path), bundled]:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
        assert infos and {i.compress_type for i in infos} == {zipfile.ZIP_STORED}
        assert sum(i.file_size for i in infos) <= path.stat().st_size
        assert load_model(path).n_classes >= 2


def test_model_file_with_a_deflated_bomb_member_is_refused(tmp_path):
    path = build_pt_bomb(tmp_path)
    with zipfile.ZipFile(path) as z:
        assert sum(i.file_size for i in z.infolist()) > BOMB_BYTES
    reason = (
        r"^bomb\.pt: not a napari-unet model file: compressed member archive/data/\d+ "
        r".*1,073,741,824 unpacked.*a zip bomb"
    )
    with pytest.raises(CheckpointError, match=reason):
        read_checkpoint(path)


def test_model_file_with_any_compressed_member_is_refused(tmp_path):
    files = members_of(build_model_file(tmp_path))
    path = write_zip(tmp_path / "deflated.pt", [deflated(n, d) for n, d in files.items()])
    with pytest.raises(CheckpointError, match=r"^deflated\.pt: .*compressed member archive/"):
        load_model(path)


def test_model_file_with_overlapping_members_is_refused(tmp_path):
    path = build_pt_overlapping(tmp_path)
    with pytest.raises(CheckpointError, match=r"^overlapping\.pt: not a napari-unet model file: "
                       r"its members declare [\d,]+ bytes, more than the file's"):  # fmt: skip
        load_model(path)


def test_model_file_with_a_stored_member_declaring_more_is_refused(tmp_path):
    files = members_of(build_model_file(tmp_path))
    victim = _largest_tensor_member(files)
    members = [stored(n, d) for n, d in files.items()]
    members = [(n, p, m, c, BOMB_BYTES if n == victim else s) for n, p, m, c, s in members]
    path = write_zip(tmp_path / "liar.pt", members)
    with pytest.raises(CheckpointError, match=r"liar\.pt: .*stored uncompressed but declares "
                       r"1,073,741,824 bytes"):  # fmt: skip
        load_model(path)


@pytest.mark.parametrize("base", [4096, 2**40])
def test_model_file_declaring_a_huge_architecture_is_refused(tmp_path, base):
    path = build_pt_huge_architecture(tmp_path, base)
    with pytest.raises(CheckpointError, match=r"architecture\.base_channels"):
        load_model(path)


# ------------------------------------------------------------------------ NaN / inf weights
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), value=st.sampled_from([float("nan"), float("inf"), -float("inf")]))
def test_save_model_refuses_non_finite_weights(tmp_path, data, value):
    model = tiny_model()
    state = model.state_dict()
    names = [k for k, v in state.items() if v.is_floating_point()]
    name = data.draw(st.sampled_from(names), label="tensor")  # buffers included
    tensor = state[name]
    index = data.draw(st.integers(0, tensor.numel() - 1), label="index")
    with torch.no_grad():
        tensor.view(-1)[index] = value
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    with pytest.raises(ValueError, match=r"^the model's weights contain NaN or infinite values "
                       r"\(a diverged training\?\): not saved$"):  # fmt: skip
        save_model(folder / "model.pt", model)
    assert list(folder.iterdir()) == []  # nothing written, no temporary file left
    with torch.no_grad():
        tensor.view(-1)[index] = 0.0
    assert save_model(folder / "model.pt", model).is_file()


# ------------------------------------------------------------------------ time and memory
@pytest.mark.parametrize("case", list(HOSTILE_CASES))
def test_hostile_files_are_refused_within_2_s_and_300_mb(tmp_path, case):
    build, kind, reason = HOSTILE_CASES[case]
    package = None
    if kind == "package":
        _spec()
        pytest.importorskip("yaml")
        package = build_package(tmp_path)
    path = build(tmp_path, package)
    result = measure_load(kind, path)
    assert result["error"] is not None, f"{case}: loaded"
    assert result["error"] in ("CheckpointError", "PackageError"), result
    assert re.search(reason, result["message"]), result["message"]
    assert result["seconds"] < MAX_SECONDS, result
    assert result["rss_growth_mb"] < MAX_RSS_GROWTH_MB, result


def test_the_measurement_sees_a_load_that_costs_memory(tmp_path):
    """The child's peak-memory measure is not blind: loading a model file of 2**25
    parameters (128 MB of float32; the child holds it twice) shows up."""
    torch.manual_seed(0)
    model = UNet(depth=4, base_channels=48)
    assert model.record.architecture.parameter_count() > 2**24
    path = save_model(tmp_path / "big.pt", model)
    del model
    result = measure_load("model", path)
    assert result["error"] is None, result
    assert result["rss_growth_mb"] > 0.8 * path.stat().st_size / MIB, result


def test_torchscript_archive_is_refused_as_such_without_reading_it(tmp_path):
    """torch.jit.save deflates its code: such a file (even with a bomb in its code) is
    named a TorchScript archive, and nothing in it is decompressed."""
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)
    files = members_of(path)
    code = next(n for n in files if "/code/" in n and n.endswith(".py"))
    members = [zeros_bomb(n) if n == code else deflated(n, d) for n, d in files.items()]
    bomb = write_zip(tmp_path / "scripted_bomb.pt", members)
    for p in (path, bomb):
        t0 = time.perf_counter()
        with pytest.raises(CheckpointError, match=rf"^{p.name}: not a readable model file: a "
                           r"TorchScript archive \(torch\.jit\.save\)"):  # fmt: skip
            load_model(p)
        assert time.perf_counter() - t0 < MAX_SECONDS
