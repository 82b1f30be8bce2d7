"""UCloud's history answers to rows (components/clouds/ucloud_rows.py): every field checked, nothing dropped."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.clouds.base import MalformedResponse
from components.clouds.ucloud_rows import map_status, task_observations, task_page
from components.model.status import HistoryRow, TargetState
from tests.fakes import near_duplicates

URL = "https://static.example.com/{}.js"


@pytest.mark.parametrize("raw, state", [("wait", TargetState.QUEUED), ("process", TargetState.RUNNING),
                                        ("SUCCESS", TargetState.WARM), ("failure", TargetState.FAILED),
                                        ("unknow", TargetState.UNKNOWN), ("weird", TargetState.UNKNOWN)])
def test_status_mapping(raw, state):
    assert map_status(raw)[0] is state


C0 = 1795000000


def item(name, **fields):
    """One entry of a task's ``UrlLists``, as the API answers it (plain JSON), with ``fields`` replaced."""
    return {"Url": URL.format(name), "Status": "success", "CreateTime": C0, "FinishTime": C0 + 5, "Progress": 100,
            **fields}


def rows_of(items, **task_fields):
    """The observations of one task of history holding ``items``.

    Straight from the row parser, which is all that stands between the answer and the rows: the
    adapter reads history answers as plain JSON, without the SDK's response schema.
    """
    task = {"TaskId": "t1", "Status": "success", "CreateTime": C0, "UrlLists": items, **task_fields}
    return list(task_observations(task))


def test_a_url_without_a_status_is_unknown_under_a_finished_task_not_the_tasks_status():
    """One failed URL fails the whole task: the task's status says nothing about a URL without its own."""
    rows = rows_of([item("bad", Status="failure"), item("a", Status=None), item("b", Status=None)], Status="failure")
    assert [(o.state, o.raw_status, o.reason) for o in rows] == [
        (TargetState.FAILED, "failure", None),
        (TargetState.UNKNOWN, None, "the cloud gave no status for this URL"),
        (TargetState.UNKNOWN, None, "the cloud gave no status for this URL")]
    for task_status in ("success", "unknow", None, "Paused"):
        assert {o.state for o in rows_of([item("a", Status=None)], Status=task_status)} == {TargetState.UNKNOWN}
    # Under a task still in flight, it is in flight with its task: polls wait for the task to end.
    assert rows_of([item("a", Status=None)], Status="PROCESS")[0].state is TargetState.RUNNING


def test_urls_of_one_task_keep_their_own_finish_time_status_and_progress():
    items = [item("a"), item("b", FinishTime=C0 + 9), item("c", Status="failure"), item("d", Status=None),
             item("e", Status="process", Progress=10, FinishTime=0),
             item("f", Status="process", Progress=60, FinishTime=0),
             item("g", CreateTime=C0 + 2), item("h")]
    got = [(o.url.rsplit("/", 1)[1], o.state, o.created.timestamp() - C0, o.updated and o.updated.timestamp() - C0,
            o.reason, o.raw_status) for o in rows_of(items, Status="wait")]
    assert got == [("a.js", TargetState.WARM, 0, 5, None, "success"), ("b.js", TargetState.WARM, 0, 9, None, "success"),
                   ("c.js", TargetState.FAILED, 0, 5, None, "failure"),
                   ("d.js", TargetState.QUEUED, 0, 5, None, "wait"),  # no status of its own: the task's
                   ("e.js", TargetState.RUNNING, 0, None, "10% done", "process"),
                   ("f.js", TargetState.RUNNING, 0, None, "60% done", "process"),
                   ("g.js", TargetState.WARM, 2, 5, None, "success"), ("h.js", TargetState.WARM, 0, 5, None, "success")]


@pytest.mark.parametrize("fields, name, detail", [
    ({"CreateTime": "yesterday"}, "TaskList[].UrlLists[].CreateTime", "expected Unix seconds, got 'yesterday'"),
    ({"FinishTime": [C0]}, "TaskList[].UrlLists[].FinishTime", "expected Unix seconds, got [1795000000]"),
    ({"FinishTime": 10**20}, "TaskList[].UrlLists[].FinishTime", "Unix seconds out of range: 100000000000000000000"),
    ({"Url": None}, "TaskList[].UrlLists[].Url",
     "expected a URL, got {'Url': None, 'Status': 'success', 'CreateTime': 1, 'FinishTime': 1, 'Progress': 100}"),
    # True == 1, but a time of True is malformed where 1 is a time: after a row whose times were 1.
    ({"CreateTime": 1, "FinishTime": True}, "TaskList[].UrlLists[].FinishTime", "expected Unix seconds, got True"),
    ({"CreateTime": True, "FinishTime": 1}, "TaskList[].UrlLists[].CreateTime", "expected Unix seconds, got True"),
])
def test_a_malformed_field_in_a_later_url_of_a_task_is_still_reported(fields, name, detail):
    earlier = item("b", CreateTime=1, FinishTime=1)
    with pytest.raises(MalformedResponse) as info:
        rows_of([item("a"), earlier, item("c", **{"CreateTime": 1, "FinishTime": 1, **fields})])
    assert info.value.field_name == name
    assert str(info.value) == \
        f"ucloud DescribeNewUcdnPrefetchCacheTask failed: MalformedResponse: field {name}: {detail}"


# Few values per field, so URLs repeat each other's fields; junk of every type, with 1 == True among it.
ITEM_VALUES = {
    "Url": [URL.format("a"), "HTTPS://Static.Example.com/b.js", "not a url"],
    "Status": ["success", "process", "failure", "wait", "unknow", "Paused", None],
    "Progress": [0, 1, 60, None],
    "CreateTime": [C0, C0 + 1, 0, None, 1, 1.0],
    "FinishTime": [C0 + 5, 0, None, 1, 1.0],
}
ITEM_JUNK = {
    "Url": [None, 5],
    "Status": [1, True, ["success"]],
    "Progress": [True, 1.0],
    "CreateTime": ["", True, False, "x", [C0], 10**20],
    "FinishTime": [True, False, "x", 10**20],
}


def outcomes(task):
    """What a task's URLs become, in order, up to the first refused one (its field and message)."""
    got = []
    try:
        got.extend(task_observations(task))
    except MalformedResponse as error:
        got.append((error.field_name, str(error)))
    return got


@settings(max_examples=300, deadline=None)
@given(near_duplicates(ITEM_VALUES, ITEM_JUNK), st.sampled_from(["success", "process", None, 1]))
def test_a_url_parses_the_same_whatever_urls_of_its_task_came_before(items, task_status):
    task = {"TaskId": "t1", "Status": task_status, "CreateTime": C0}
    together = outcomes({**task, "UrlLists": items})
    alone = []
    for one in items:
        alone.extend(outcomes({**task, "UrlLists": [one]}))
        if not isinstance(alone[-1], HistoryRow):
            break  # a refused URL ends the task's rows
    assert together == alone


def test_a_time_written_as_digits_is_read_as_the_sdk_schema_read_it():
    """The SDK's response schema (no longer run on history answers) read times with int(): "1795000005" is
    the time it says; anything else that is not a number is still refused."""
    [row] = rows_of([item("a", CreateTime=str(C0 + 1), FinishTime=str(C0 + 5))], CreateTime=str(C0))
    assert (row.created.timestamp(), row.updated.timestamp()) == (C0 + 1, C0 + 5)
    for junk in ("-5", "1.5e9", " 1795000000", "١٢٣"):  # a sign, an exponent, a space, Arabic-Indic digits
        with pytest.raises(MalformedResponse, match="expected Unix seconds"):
            rows_of([item("a", FinishTime=junk)])


@pytest.mark.parametrize("answer, expected", [
    ({"TotalCount": 2, "TaskList": [{"TaskId": "a"}, {"TaskId": "b"}]}, (2, [{"TaskId": "a"}, {"TaskId": "b"}])),
    ({}, (0, [])),  # an answer without either: no tasks
    ({"TotalCount": 0, "TaskList": None}, (0, [])),
])
def test_a_page_answers_its_count_and_tasks(answer, expected):
    assert task_page(answer) == expected


@pytest.mark.parametrize("answer", [{"TotalCount": "2", "TaskList": []}, {"TotalCount": 1, "TaskList": {"a": 1}},
                                    {"TotalCount": None, "TaskList": []}])
def test_a_page_of_the_wrong_shape_is_malformed_not_empty(answer):
    with pytest.raises(MalformedResponse) as info:
        task_page(answer, "DescribeNewUcdnRefreshCacheTask")
    assert info.value.action == "DescribeNewUcdnRefreshCacheTask" and info.value.field_name == "TotalCount/TaskList"
