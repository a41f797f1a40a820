import getpass
import os
import tempfile
import zlib

import pytest
import torch

# Two cores, no GPU. One thread per pytest-xdist worker (`make test` runs one per core), and OMP_NUM_THREADS=1
# when the machine is shared: OpenMP threads spin at barriers, and one small op can take 30x longer with 2
# threads if another process holds a core.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", 1))
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", 0)) or max(1, min(2, (os.cpu_count() or 1) // _WORKERS)))

# The data files' hash cache (mebqat/core/data_fingerprint.py) of every test, and of the processes they start, in
# one file of the temporary folder, not the user's cache folder; it drops the entries of deleted files.
HASH_CACHE = os.path.join(tempfile.gettempdir(), f"mebqat-tests-{getpass.getuser()}-file-hashes.json")
os.environ.setdefault("MEBQAT_HASH_CACHE", HASH_CACHE)


@pytest.fixture
def rng_seed(request) -> int:
    """A seed per test, derived from its id: tensors differ between tests, and a failure reproduces."""
    return zlib.crc32(request.node.nodeid.encode())


@pytest.fixture(scope="session")
def data_root(tmp_path_factory):
    """One data root for the whole session, so each offline stand-in is built at most once."""
    return tmp_path_factory.mktemp("data")
