import pytest

from gpo_local.algorithm.schedules import make_schedule, total_steps
from gpo_local.errors import ConfigError

# GPO_SPEC 2.5, I=50, F=10, no warmup; c = len(trajectory) runs from 1 to T.
COSINE_18 = [49, 48, 47, 45, 42, 40, 36, 33, 30, 26, 23, 20, 17, 14, 12, 11, 10, 10]
LINEAR_18 = [47, 45, 43, 41, 38, 36, 34, 32, 30, 27, 25, 23, 21, 18, 16, 14, 12, 10]
COSINE_9 = [48, 45, 40, 33, 26, 20, 14, 11, 10]
COSINE_39 = [
    49,
    49,
    49,
    48,
    48,
    47,
    46,
    45,
    44,
    43,
    42,
    41,
    40,
    38,
    37,
    35,
    34,
    32,
    30,
    29,
    27,
    25,
    24,
    22,
    21,
    19,
    18,
    17,
    16,
    15,
    14,
    13,
    12,
    11,
    11,
    10,
    10,
    10,
    10,
]


@pytest.mark.parametrize(
    "name,steps,table",
    [
        ("cosine", 18, COSINE_18),
        ("consine", 18, COSINE_18),
        ("linear", 18, LINEAR_18),
        ("cosine", 9, COSINE_9),
        ("cosine", 39, COSINE_39),
    ],
)
def test_schedule_matches_the_papers_tables(name, steps, table):
    schedule = make_schedule(name, initial=50, final=10, total_steps=steps)
    assert [schedule(c) for c in range(1, steps + 1)] == table


def test_fixed_and_warmup():
    assert [make_schedule("fixed", initial=30)(c) for c in (1, 5, 18)] == [30, 30, 30]
    warm = make_schedule("fixed", initial=30, warmup=3)
    assert [warm(c) for c in (1, 2, 3, 4)] == [10, 20, 30, 30]
    cos = make_schedule("cosine", initial=50, final=10, total_steps=10, warmup=2)
    assert cos(1) == 25  # int(50 * 1 / 2)
    assert cos(2) == 50  # cos(0): start of the decay
    assert cos(10) == 10
    lin = make_schedule("linear", initial=50, final=10, total_steps=10, warmup=2)
    assert [lin(c) for c in (1, 2, 6, 10)] == [25, 50, 30, 10]


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        ({"name": "cosine", "initial": 0, "total_steps": 5}, "initial=0"),
        ({"name": "cosine", "total_steps": 2, "warmup": 2}, "total_steps (2) > warmup (2)"),
        ({"name": "steps"}, "unknown schedule 'steps'"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        make_schedule(**kwargs)


@pytest.mark.parametrize(
    "train,expected", [(48, 18), (35, 12), (33, 12), (27, 9), (20, 9), (100, 39), (50, 18), (8, 3), (3, 0)]
)
def test_total_steps_counts_batches_as_the_original(train, expected):
    assert total_steps(train) == expected
