"""How many persons a call-out's shard holds (workflows/callout_models.py `shard_size_for`, issue 25)."""
import pytest

from workflows.callout_models import LARGEST_SHARD, MOST_SHARDS, SHARD_SIZE, shard_size_for


@pytest.mark.parametrize(("persons", "size"), [
    (0, SHARD_SIZE), (30, SHARD_SIZE), (10_000, SHARD_SIZE),
    (SHARD_SIZE * MOST_SHARDS, SHARD_SIZE),  # up to here: shards of SHARD_SIZE, at most MOST_SHARDS of them
    (SHARD_SIZE * MOST_SHARDS + 1, SHARD_SIZE + 1),  # past it the shards grow, still MOST_SHARDS of them
    (100_000, 1_493),  # 67 shards, where there were 200 of 500
    (LARGEST_SHARD * MOST_SHARDS * 10, LARGEST_SHARD),  # a payload's bound: then more shards, none larger
])
def test_shards_grow_past_most_shards_up_to_the_largest(persons, size):
    assert shard_size_for(persons) == size
    if persons:
        assert -(-persons // size) <= MOST_SHARDS or size == LARGEST_SHARD


def test_a_plan_asking_for_larger_shards_gets_them():
    assert shard_size_for(30, least=4) == 4
    assert shard_size_for(30, least=2_000) == 2_000  # `least` is the caller's (CalloutInput.shard_size): kept
