"""Remote sources: byte-exact range reads over real servers (nginx, moto S3), fsspec and pyarrow
filesystems, and a clear error naming the URL for every failure (misbehaving server)."""

from __future__ import annotations

import os
import pickle
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import fsspec
import pyarrow.fs as pafs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from episode_sampler.lerobot import remote_source
from episode_sampler.lerobot.remote_errors import (
    RangeNotSupportedError,
    RemoteReadError,
    TransientError,
    TruncatedError,
    backoff_s,
    with_retries,
)
from episode_sampler.lerobot.remote_source import (
    ArrowSource,
    FsspecSource,
    HttpSource,
    open_source,
)
from tests.helpers.servers import NGINX, Misbehaving, Nginx, self_signed

DATA = bytes((i * 7919 + (i >> 8)) % 251 for i in range(200_000))
FILES = {"a.bin": DATA, "sub/dir/b.bin": DATA[:12345], "empty.bin": b""}


def write_files(root: Path) -> Path:
    for rel, data in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


@pytest.fixture(scope="module")
def served(nginx, tmp_path_factory) -> str:
    return nginx.serve(write_files(tmp_path_factory.mktemp("served")), "remote-source")


@pytest.fixture()
def bad() -> Misbehaving:
    with Misbehaving({"f.bin": DATA}) as server:
        yield server


# ------------------------------------------------------------------------------------------ open_source


@pytest.mark.parametrize("root", ["data/ds", "/abs/ds", Path("/x/y"), "file:///x/y", "C:\\data\\ds"])
def test_a_local_root_has_no_source(root):
    assert open_source(root) is None


def test_local_path_strips_file_scheme():
    assert remote_source.local_path("file:///x/my%20ds") == Path("/x/my ds")
    assert remote_source.local_path("rel/ds") == Path("rel/ds")


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"timeout_s": 0}, ValueError, "timeout_s"),
        ({"timeout_s": float("inf")}, ValueError, "timeout_s"),
        ({"timeout_s": "1"}, TypeError, "timeout_s"),
        ({"retries": -1}, ValueError, "retries"),
        ({"retries": 1.5}, TypeError, "retries"),
        ({"filesystem": object()}, TypeError, "filesystem"),
    ],
)
def test_bad_options_name_the_argument(kwargs, error, name):
    with pytest.raises(error, match=name):
        open_source("http://127.0.0.1:1/ds", **kwargs)


def test_bad_roots_are_refused():
    with pytest.raises(TypeError, match="root"):
        open_source(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hf://datasets"):
        open_source("hf://org/name")


def test_rel_must_stay_inside_the_root(served):
    source = open_source(served)
    for rel in ("/etc/passwd", "../x", "a/../../x"):
        with pytest.raises(ValueError, match="rel"):
            source.size(rel)
    with pytest.raises(ValueError, match="start <= stop"):
        source.read("a.bin", 5, 4)


# ------------------------------------------------------------------------------------------ nginx


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, len(DATA)), st.integers(0, 70_000))
def test_http_ranges_equal_the_local_bytes(served, start, length):
    source = open_source(served, timeout_s=5, retries=1)
    stop = min(len(DATA), start + length)
    assert source.read("a.bin", start, stop) == DATA[start:stop]


def test_http_size_version_identity_and_listing(served):
    source = open_source(served)
    assert isinstance(source, HttpSource)
    assert [source.size(r) for r in FILES] == [len(d) for d in FILES.values()]
    assert source.stat("a.bin").version.startswith("etag:")
    assert source.identity == served + "/"
    assert source.name("sub/dir/b.bin") == served + "/sub/dir/b.bin"
    assert source.read("empty.bin", 0, 0) == b""
    assert source.list("") is None  # plain HTTP cannot list


def test_http_missing_file_names_the_url(served):
    source = open_source(served)
    with pytest.raises(FileNotFoundError, match=f"{served}/nope.bin.*404"):
        source.size("nope.bin")
    with pytest.raises(FileNotFoundError, match=f"{served}/nope.bin"):
        source.read("nope.bin", 0, 10)


def test_http_source_pickles_and_reads_from_many_threads(served):
    source = pickle.loads(pickle.dumps(open_source(served)))
    spans = [(i * 1000, i * 1000 + 5000) for i in range(64)]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda s: source.read("a.bin", *s), spans))
    assert got == [DATA[a:b] for a, b in spans]
    source.read("a.bin", 0, 10)
    assert pickle.loads(pickle.dumps(source)).read("a.bin", 3, 9) == DATA[3:9]


def test_credentials_in_the_url_stay_out_of_names(served):
    with_user = served.replace("http://", "http://user:secret@")
    source = open_source(with_user)
    assert "secret" not in source.identity and "secret" not in source.name("a.bin")
    assert source.read("a.bin", 0, 100) == DATA[:100]  # nginx ignores the Authorization header


# ------------------------------------------------------------------------------- failure behaviour


def expect(bad, mode, error, pattern, *, retries=0, timeout_s=2.0):
    source = open_source(f"{bad.url}/{mode}", timeout_s=timeout_s, retries=retries)
    url = f"{bad.url}/{mode}/f.bin"
    with pytest.raises(error, match=pattern) as info:
        source.read("f.bin", 10, 5000)
    assert url in str(info.value)
    return info.value


def test_404_403_401_are_file_and_permission_errors(bad):
    expect(bad, "404", FileNotFoundError, "HTTP 404")
    expect(bad, "403", PermissionError, "HTTP 403")
    expect(bad, "401", PermissionError, "HTTP 401")


def test_500_is_retried_with_backoff_then_succeeds(bad):
    bad.fail["f.bin"] = 2
    source = open_source(f"{bad.url}/flaky", timeout_s=2, retries=2)
    assert source.read("f.bin", 10, 5000) == DATA[10:5000]
    assert [m for m, p, _ in bad.log if p == "/flaky/f.bin"] == ["GET"] * 3  # 500, 500, 206


def test_500_after_the_retries_names_the_url(bad):
    bad.fail["f.bin"] = 10
    expect(bad, "flaky", RemoteReadError, "HTTP 500", retries=1)
    assert len(bad.log) == 2


def test_429_waits_and_retries(bad):
    bad.fail["f.bin"] = 1
    source = open_source(f"{bad.url}/busy", timeout_s=2, retries=1)
    assert source.read("f.bin", 0, 100) == DATA[:100]


def test_a_server_ignoring_range_is_a_clear_error(bad):
    expect(bad, "norange", RangeNotSupportedError, "ignores byte-range requests")


def test_a_cut_body_is_retried_then_reported_truncated(bad):
    expect(bad, "cut", TruncatedError, "truncated", retries=1)
    assert sum(1 for m, _, _ in bad.log if m == "GET") == 2


def test_a_short_body_is_reported_truncated(bad):
    expect(bad, "short", TruncatedError, "truncated")


def test_a_changed_file_is_reported(bad):
    bad.files["g.bin"] = DATA
    source = open_source(f"{bad.url}/ok", timeout_s=2, retries=0)
    source.stat("g.bin")
    bad.etag = '"v2"'
    with pytest.raises(RemoteReadError, match="changed on the server"):
        source.read("g.bin", 0, 10)
    bad.etag = '"v1"'
    assert source.read("g.bin", 0, 10) == DATA[:10]  # the connection was not left with a body unread


def test_a_server_without_head_is_asked_for_one_byte(bad):
    bad.files["empty.bin"] = b""
    source = open_source(f"{bad.url}/nohead", timeout_s=2, retries=0)
    assert source.stat("f.bin").size == len(DATA)
    assert source.stat("f.bin").version == 'etag:"v1"'
    assert source.size("empty.bin") == 0
    assert [m for m, _, _ in bad.log] == ["HEAD", "GET", "HEAD", "GET"]


@pytest.mark.parametrize("mode", ["stall", "stallbody"])
def test_a_stalled_server_times_out_naming_the_url(bad, mode):
    t0 = time.monotonic()
    expect(bad, mode, TimeoutError, "0.3 s", retries=1, timeout_s=0.3)
    # two attempts of 0.3 s and one backoff of 0.1 s: bounded, never a hang
    assert time.monotonic() - t0 < 5


def test_with_retries_backs_off_exponentially():
    waits: list[float] = []
    calls = []

    def call():
        calls.append(1)
        raise TransientError(ConnectionError("http://x/y: reset"))

    with pytest.raises(ConnectionError, match="http://x/y"):
        with_retries(call, 3, sleep=waits.append)
    assert len(calls) == 4
    assert waits == [backoff_s(0), backoff_s(1), backoff_s(2)] == [0.1, 0.2, 0.4]


# ------------------------------------------------------------------------- fsspec and pyarrow objects


def test_an_fsspec_filesystem_object(tmp_path):
    fs = fsspec.filesystem("memory")
    for rel, data in FILES.items():
        fs.pipe(f"/fsspec-test/{rel}", data)
    source = open_source("/fsspec-test", filesystem=fs)
    assert isinstance(source, FsspecSource)
    assert source.read("a.bin", 100, 150_000) == DATA[100:150_000]
    assert source.size("sub/dir/b.bin") == 12345
    assert source.list("") == sorted(FILES)
    assert source.list("sub") == ["sub/dir/b.bin"]
    assert source.list("nope") == []
    with pytest.raises(FileNotFoundError, match="memory://fsspec-test/nope"):
        source.size("nope")
    assert pickle.loads(pickle.dumps(source)).read("a.bin", 0, 9) == DATA[:9]


def test_an_fsspec_url(tmp_path):
    fsspec.filesystem("memory").pipe("/url-test/a.bin", DATA)
    source = open_source("memory://url-test")
    assert isinstance(source, FsspecSource)
    assert source.read("a.bin", 5, 10) == DATA[5:10]


@pytest.mark.parametrize("kind", ["local", "subtree"])
def test_a_pyarrow_filesystem_object(tmp_path, kind):
    write_files(tmp_path)
    if kind == "local":
        source = open_source(str(tmp_path), filesystem=pafs.LocalFileSystem())
    else:
        source = open_source("", filesystem=pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem()))
    assert isinstance(source, ArrowSource)
    assert source.read("a.bin", 7, 199_999) == DATA[7:199_999]
    assert source.stat("a.bin").version.startswith("mtime:")
    assert source.list("") == sorted(FILES)
    with pytest.raises(FileNotFoundError, match="nope"):
        source.read("nope", 0, 1)
    assert pickle.loads(pickle.dumps(source)).read("sub/dir/b.bin", 0, 12345) == DATA[:12345]


def test_hf_roots_use_huggingface_hubs_filesystem(monkeypatch):
    fs = fsspec.filesystem("memory")
    fs.pipe("/datasets/org/name@v2/meta/info.json", b"{}")
    monkeypatch.setattr(remote_source, "hf_filesystem", lambda: fs)
    source = open_source("hf://datasets/org/name@v2")
    assert source.identity == "hf://datasets/org/name@v2/"
    assert source.read("meta/info.json", 0, 2) == b"{}"
    assert source.list("meta") == ["meta/info.json"]
    with pytest.raises(FileNotFoundError, match="hf://datasets/org/name@v2/meta/nope"):
        source.size("meta/nope")


def test_hf_without_huggingface_hub_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(ImportError, match="pip install huggingface_hub"):
        open_source("hf://datasets/org/name")


# ------------------------------------------------------------------------------------------ S3 (moto)


@pytest.mark.slow
def test_s3_reads_listing_and_errors(moto_s3, tmp_path, monkeypatch):
    moto_s3.upload(write_files(tmp_path), "bucket-source", "prefix/ds")
    for k, v in moto_s3.env.items():
        monkeypatch.setenv(k, v)
    source = open_source("s3://bucket-source/prefix/ds", timeout_s=5, retries=1)
    assert moto_s3.endpoint in source.identity
    assert source.read("a.bin", 3, 150_001) == DATA[3:150_001]
    assert [source.size(r) for r in FILES] == [len(d) for d in FILES.values()]
    assert source.list("") == sorted(FILES)
    with pytest.raises(FileNotFoundError, match="s3://bucket-source/prefix/ds/nope"):
        source.size("nope")
    copy = pickle.loads(pickle.dumps(source))
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda i: copy.read("a.bin", i * 997, i * 997 + 3000), range(16)))
    assert got == [DATA[i * 997 : i * 997 + 3000] for i in range(16)]


def read_head(source) -> bytes:
    return source.read("a.bin", 0, 1000)


@pytest.mark.slow
def test_s3_source_used_before_a_fork_works_in_forked_workers(moto_s3, tmp_path, monkeypatch):
    import multiprocessing

    moto_s3.upload(write_files(tmp_path), "bucket-fork", "ds")
    for k, v in moto_s3.env.items():
        monkeypatch.setenv(k, v)
    source = open_source("s3://bucket-fork/ds", timeout_s=5, retries=1)
    assert read_head(source) == DATA[:1000]  # the AWS SDK is initialized in the parent
    with multiprocessing.get_context("fork").Pool(2) as pool:
        assert pool.map_async(read_head, [source] * 4).get(timeout=60) == [DATA[:1000]] * 4


def test_s3_without_credentials_is_anonymous(monkeypatch, tmp_path):
    for k in list(os.environ):
        if k.startswith("AWS_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    assert remote_source.s3_options("", 3.0, 2)["anonymous"] is True
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    assert "anonymous" not in remote_source.s3_options("http://127.0.0.1:9", 3.0, 2)


def test_http_url_and_identity():
    source = open_source("https://u:p@Example.org/a/ds/")
    assert source.url == "https://example.org/a/ds"
    assert source.identity == "https://example.org:443/a/ds/"
    assert source.name("meta/my file.json") == "https://example.org/a/ds/meta/my%20file.json"


@pytest.mark.slow
def test_https_with_a_trusted_certificate(tmp_path, monkeypatch):
    if NGINX is None or shutil.which("openssl") is None:
        pytest.skip("needs nginx and openssl")
    cert, key = self_signed(tmp_path)
    with Nginx(tmp_path / "tls", tls=(cert, key)) as server:
        url = server.serve(write_files(tmp_path / "files"), "tls")
        untrusted = open_source(url, timeout_s=5, retries=3)  # a certificate error is not retried
        with pytest.raises(ConnectionError, match=f"{url}/a.bin.*CERTIFICATE_VERIFY_FAILED"):
            untrusted.read("a.bin", 0, 10)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        source = open_source(url, timeout_s=5, retries=0)
        assert source.read("a.bin", 1000, 150_000) == DATA[1000:150_000]


def test_one_connection_serves_heads_and_ranges(bad):
    bad.files["g.bin"] = DATA
    source = open_source(f"{bad.url}/ok", timeout_s=2, retries=0)
    for rel in ("f.bin", "g.bin"):
        source.size(rel)
        source.read(rel, 0, 100_000)
    assert len(bad.connections) == 1  # keep-alive: no new connection after a HEAD or a large body


def test_a_trickling_server_times_out(bad):
    bad.trickle = 256  # 12.8 kB/s: the 20 kB body would take 1.6 s, the read gives up after 0.3 + 0.3 s
    t0 = time.monotonic()
    source = open_source(f"{bad.url}/slow", timeout_s=0.3, retries=0)
    with pytest.raises(TimeoutError, match=f"{bad.url}/slow/f.bin: .* of 20000 bytes after 0.3 s"):
        source.read("f.bin", 0, 20_000)
    assert time.monotonic() - t0 < 1.5


def test_a_keep_alive_connection_the_server_closed_is_remade_without_a_retry(bad):
    source = open_source(f"{bad.url}/oneshot", timeout_s=2, retries=0)
    for i in range(5):
        assert source.read("f.bin", i * 100, i * 100 + 50) == DATA[i * 100 : i * 100 + 50]
    assert len(bad.connections) == 5
