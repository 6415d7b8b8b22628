"""The kinds of node and the statuses a node's run ends with (dbt's ``NodeType`` / ``RunStatus``).

``StrEnum`` members are ``str``: they compare equal to, and serialise (JSON, f-strings) as, their
values, so manifest.json and run_results.json read exactly as the plain strings did.
"""

from __future__ import annotations

try:
    from enum import StrEnum
except ImportError:  # Python 3.10 (pyproject's floor): the same behaviour, spelled out
    from enum import Enum

    class StrEnum(str, Enum):  # type: ignore[no-redef]
        def __str__(self) -> str:
            return str(self.value)


class NodeType(StrEnum):
    MODEL = "model"
    SEED = "seed"
    TEST = "test"
    UNIT_TEST = "unit_test"  # dbt 1.8 unit tests (unit_tests.py): a model run on fixture rows
    SOURCE = "source"


# the nodes that are relations in the database (ref() resolves to them)
RELATION_TYPES = (NodeType.MODEL, NodeType.SEED)


class Status(StrEnum):
    SUCCESS = "success"  # a model or seed was built
    PASS = "pass"  # a test found no failing rows
    WARN = "warn"  # a test with severity warn found failing rows; a model whose every ai_query value failed
    FAIL = "fail"  # a test with severity error found failing rows
    ERROR = "error"  # the node raised
    SKIPPED = "skipped"  # an upstream node did not succeed


# the statuses after which downstream nodes still run
OK_STATUSES = (Status.SUCCESS, Status.PASS, Status.WARN)
