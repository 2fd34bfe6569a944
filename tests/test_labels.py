import pytest

from fermixnet import labels


def test_rafdb_map_is_a_bijection_onto_the_seven_classes():
    assert sorted(labels.RAFDB_TO_CANONICAL.values()) == list(range(7))
    names = [labels.CANONICAL[labels.RAFDB_TO_CANONICAL[k]] for k in range(1, 8)]
    assert names == ["surprise", "fear", "disgust", "happy", "sad", "anger", "neutral"]


def test_ferplus_map_follows_vote_columns():
    for col, name in enumerate(labels.FERPLUS_COLUMNS):
        canon = labels.CANONICAL[labels.FERPLUS_TO_CANONICAL[col]]
        assert labels.canonical_index(name) == labels.CANONICAL.index(canon)


def test_fer2013_map():
    names = [labels.CANONICAL[labels.FER2013_TO_CANONICAL[k]] for k in range(7)]
    assert names == ["anger", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def test_aliases_and_errors():
    assert labels.canonical_index("Neural") == 0  # FED-RO's folder spelling
    assert labels.canonical_index("happiness") == 1
    with pytest.raises(ValueError, match="unknown expression label 'smirk'"):
        labels.canonical_index("smirk")
    with pytest.raises(ValueError, match="7 or 8"):
        labels.class_names(6)
    assert labels.class_names(7)[-1] == "anger"
