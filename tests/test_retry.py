import pytest

from components.clouds.base import CloudError
from components.clouds.retry import RetryPolicy, call_with_retry
from components.clouds.tencent import classify
from components.clouds.ucloud import classify_retcode


class Flaky:
    def __init__(self, *kinds):
        self.kinds, self.calls = list(kinds), 0

    def __call__(self):
        self.calls += 1
        if self.kinds:
            kind = self.kinds.pop(0)
            raise CloudError("c", "A", f"Code.{kind}", "boom", kind=kind)
        return "ok"


def run(fn, read_only, policy=RetryPolicy(max_attempts=5, base_delay=0.1, deadline=10)):
    slept = []
    result = call_with_retry(fn, read_only=read_only, policy=policy, sleep=slept.append, clock=lambda: sum(slept))
    return result, slept


def test_throttling_is_retried_for_reads_and_submits():
    for read_only in (True, False):
        fn = Flaky("throttled", "throttled")
        assert run(fn, read_only)[0] == "ok" and fn.calls == 3


def test_transient_errors_are_retried_only_for_read_only_calls():
    fn = Flaky("transient")
    assert run(fn, True)[0] == "ok" and fn.calls == 2
    fn = Flaky("transient")
    with pytest.raises(CloudError):
        run(fn, False)  # a submit that may have been accepted is never re-sent blindly
    assert fn.calls == 1


@pytest.mark.parametrize("kind", ["quota", "auth", "invalid", "malformed", "other"])
def test_permanent_errors_fail_at_once(kind):
    fn = Flaky(kind)
    with pytest.raises(CloudError):
        run(fn, True)
    assert fn.calls == 1


def test_attempts_and_deadline_are_bounded_and_backoff_grows():
    fn = Flaky(*["throttled"] * 10)
    with pytest.raises(CloudError):
        run(fn, True, RetryPolicy(max_attempts=4, base_delay=1, max_delay=100, deadline=1000))
    assert fn.calls == 4
    policy = RetryPolicy(base_delay=1, max_delay=8)
    assert [policy.delay(a, rng=lambda: 1.0) for a in range(5)] == [1, 2, 4, 8, 8]
    fn = Flaky(*["throttled"] * 10)
    with pytest.raises(CloudError):
        run(fn, True, RetryPolicy(max_attempts=50, base_delay=5, max_delay=5, deadline=12))


@pytest.mark.parametrize("code, kind", [
    ("RequestLimitExceeded", "throttled"), ("RequestLimitExceeded.UinLimitExceeded", "throttled"),
    ("UnauthorizedOperation.OperationTooOften", "throttled"), ("LimitExceeded.CdnHostOpTooOften", "throttled"),
    ("ServerNetworkError", "transient"), ("ClientNetworkError", "transient"), ("InternalError.BackendError", "transient"),
    ("LimitExceeded.DailyQuota", "quota"), ("LimitExceeded.CdnPushExceedDayLimit", "quota"),
    ("AuthFailure.SignatureExpire", "auth"), ("UnauthorizedOperation.CamUnauthorized", "auth"),
    ("InvalidParameter.Target", "invalid"), ("MissingParameter", "invalid"),
])
def test_tencent_codes_are_classified(code, kind):
    assert classify(code) == kind


@pytest.mark.parametrize("code, kind", [(153, "throttled"), (150, "throttled"), (110, "transient"), (171, "auth"),
                                        (299, "auth"), (230, "invalid")])
def test_ucloud_retcodes_are_classified(code, kind):
    assert classify_retcode(code) == kind
