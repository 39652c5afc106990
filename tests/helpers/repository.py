"""Where the repository keeps the files tests read, and the official files' checksums."""

from __future__ import annotations

import hashlib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_ANNOTATIONS = REPO_ROOT / "examples" / "annotations"
VALIDATION_CSV = EXAMPLE_ANNOTATIONS / "EPIC_100_validation.csv"
# The official pickles, as an old pandas wrote them, stored xz-compressed (3.9 MB -> 0.5 MB).
ANNOTATION_PICKLES = REPO_ROOT / "tests" / "data" / "annotations"
# sha256 of the files as the official annotation repository publishes them: every copy the
# repository holds (examples/, tests/data/, the packaged tables) is checked against these.
OFFICIAL_SHA256 = {
    "EPIC_100_validation.csv": "35f7932ba0a1127a96cac215a98d35398946f343e3cea9ad6688ed17eee9d75d",
    "EPIC_100_validation.pkl": "169ece7854f4a461e8ee16bbadefeb4542482475ef5df30bb28bd55cd265a91e",
    "EPIC_100_test_timestamps.pkl": (
        "75e28a16547138b05cc769d610d154dea7c8085aea7328e10b7e6c1dfef6ac12"
    ),
    "EPIC_100_verb_classes.csv": "aab8bf210d0234b6facb9b191ae402c03a5f8965d123586b4762d3468a85033e",
    "EPIC_100_noun_classes.csv": "40f0a81c5bd06b33050df9f0bd17cd3c2fccd759f9581e4e5e04fec7562be893",
    "EPIC_100_tail_verbs.csv": "6f124f23759b2bfaa742e071619d78a08b5d2f80147db9919c612c72c9774c94",
    "EPIC_100_tail_nouns.csv": "62e3449a7a95fdcb43bc2eaa52a191844f4a566ff1178d2c867b0c0822387266",
    "EPIC_100_unseen_participant_ids_validation.csv": (
        "1274797112b20dd821cd10f62537545e669c4b7d742e36590e9f0f7ffb0c6a54"
    ),
    "EPIC_100_unseen_participant_ids_test.csv": (
        "85068fba968e33c73706bca0c7b212777bc2280ad6556550baab6d91042b382b"
    ),
}


def sha256_of(path: Path) -> str:
    """Hex sha256 of the file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
