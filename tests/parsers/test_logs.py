"""Tests for the container log line parser (mlops_trace.parsers.logs)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from mlops_trace.parsers.logs import LogRecord, iter_records, message_contains, parse_line

SCHEDULER_REMOVE_ROUTES = (
    'time="2025-07-12T18:30:09Z" level=info msg="Remove Routes for model iris" func=RemoveRoute source=SeldonXDSCache'
)
SCHEDULER_REMOVE_ROUTES_OLD = (
    'time="2024-03-02T08:00:01Z" level=info msg="Remove routes for model iris" func=RemoveRoute source=SeldonXDSCache'
)
CONTROLLER_NOT_READY = (
    "2025-07-12T18:30:09.123Z\tERROR\tSchedulerClient.SubscribeModelEvents\tScheduler not ready\t"
    '{"version": "v2.9.1", "error": "rpc error: code = Unavailable desc = connection error: desc = \\"transport: '
    'Error while dialing: dial tcp: lookup seldon-scheduler.seldon-mesh on 10.96.0.10:53: no such host\\""}'
)
AGENT_SUBSCRIBED = (
    'time="2025-07-12T18:30:11Z" level=info msg="Subscribed to scheduler" Name=AgentServiceManager '
    "func=handleSchedulerSubscription"
)
AGENT_LOAD_SUCCESS = (
    'time="2025-07-12T18:30:12Z" level=info msg="Load model iris:1 success" Name=AgentServiceManager func=LoadModel'
)


def test_logrus_text_scheduler_remove_routes() -> None:
    record = parse_line(3, SCHEDULER_REMOVE_ROUTES + "\n")
    assert record.lineno == 3
    assert record.raw == SCHEDULER_REMOVE_ROUTES
    assert record.time == datetime(2025, 7, 12, 18, 30, 9, tzinfo=UTC)
    assert record.level == "info"
    assert record.message == "Remove Routes for model iris"
    assert record.logger == "SeldonXDSCache"
    assert dict(record.fields) == {"func": "RemoveRoute"}


def test_remove_routes_matches_both_spellings_case_insensitively() -> None:
    new, old = parse_line(1, SCHEDULER_REMOVE_ROUTES), parse_line(2, SCHEDULER_REMOVE_ROUTES_OLD)
    assert old.message == "Remove routes for model iris"
    for record in (new, old):
        assert message_contains(record, "remove routes for model iris")
        assert message_contains(record, "REMOVE ROUTES")
        assert not message_contains(record, "Trying to setup experiment")


def test_logrus_quoted_values_with_go_escapes_and_bare_values() -> None:
    line = (
        'time="2025-07-12T18:30:09+02:00" level=warning msg="Failed to schedule model \\"iris\\":\\tno matching '
        'servers are available" error="caf\\u00e9 \\x41" source=SimpleScheduler attempt=3 empty='
    )
    record = parse_line(1, line)
    assert record.level == "warning"
    assert record.message == 'Failed to schedule model "iris":\tno matching servers are available'
    assert record.time == datetime(2025, 7, 12, 18, 30, 9, tzinfo=timezone(timedelta(hours=2)))
    assert record.logger == "SimpleScheduler"
    assert dict(record.fields) == {"error": "café A", "attempt": "3", "empty": ""}


def test_logrus_unterminated_quote_degrades_instead_of_failing() -> None:
    record = parse_line(1, 'time="2025-07-12T18:30:09Z" level=error msg="cut off in the mid')
    assert record.level == "error"
    assert record.message == "cut off in the mid"


def test_agent_lines_use_name_field_as_logger() -> None:
    subscribed = parse_line(1, AGENT_SUBSCRIBED)
    assert subscribed.message == "Subscribed to scheduler"
    assert subscribed.logger == "AgentServiceManager"
    assert subscribed.fields["func"] == "handleSchedulerSubscription"
    loaded = parse_line(2, AGENT_LOAD_SUCCESS)
    assert loaded.message == "Load model iris:1 success"
    assert message_contains(loaded, "load model iris:1 success")


def test_zap_development_line_with_json_tail() -> None:
    record = parse_line(7, CONTROLLER_NOT_READY)
    assert record.time == datetime(2025, 7, 12, 18, 30, 9, 123000, tzinfo=UTC)
    assert record.level == "error"
    assert record.logger == "SchedulerClient.SubscribeModelEvents"
    assert record.message == "Scheduler not ready"
    assert record.fields["version"] == "v2.9.1"
    assert record.fields["error"].startswith("rpc error: code = Unavailable")
    assert "no such host" in record.fields["error"]


@pytest.mark.parametrize(
    ("line", "logger", "message", "fields"),
    [
        ("2025-07-12T18:30:09.123Z\tINFO\tConnecting to scheduler", None, "Connecting to scheduler", {}),
        (
            "2025-07-12T18:30:09.123Z\tINFO\tscheduler/client.go:120\tConnecting to scheduler",
            None,
            "Connecting to scheduler",
            {"caller": "scheduler/client.go:120"},
        ),
        (
            "2025-07-12T18:30:09.123Z\tINFO\tSchedulerClient\tscheduler/client.go:120\tDialing scheduler",
            "SchedulerClient",
            "Dialing scheduler",
            {"caller": "scheduler/client.go:120"},
        ),
        (
            '2025-07-12T18:30:09.123+0000\tWARN\tSchedulerClient\tRetrying to connect\t{"attempt": 2}',
            "SchedulerClient",
            "Retrying to connect",
            {"attempt": "2"},
        ),
        ("2025-07-12T18:30:09.123Z\tDEBUG\tsetup\tstarting manager", "setup", "starting manager", {}),
    ],
)
def test_zap_development_variants(line: str, logger: str | None, message: str, fields: dict[str, str]) -> None:
    record = parse_line(1, line)
    assert record.logger == logger
    assert record.message == message
    assert dict(record.fields) == fields
    assert record.time is not None and record.time.tzinfo is not None


def test_zap_json_with_float_epoch() -> None:
    line = (
        '{"level":"info","ts":1752345009.5,"logger":"SchedulerClient","caller":"scheduler/client.go:88",'
        '"msg":"Connected to scheduler","host":"seldon-scheduler.seldon-mesh","port":9004,"tls":false}'
    )
    record = parse_line(1, line)
    assert record.time == datetime(2025, 7, 12, 18, 30, 9, 500000, tzinfo=UTC)
    assert record.level == "info"
    assert record.logger == "SchedulerClient"
    assert record.message == "Connected to scheduler"
    assert dict(record.fields) == {
        "caller": "scheduler/client.go:88",
        "host": "seldon-scheduler.seldon-mesh",
        "port": "9004",
        "tls": "false",
    }


def test_zap_json_with_string_time_and_warn_level() -> None:
    record = parse_line(1, '{"level":"warn","ts":"2025-07-12T18:30:09.123Z","msg":"Setting model to not ready"}')
    assert record.level == "warning"
    assert record.time == datetime(2025, 7, 12, 18, 30, 9, 123000, tzinfo=UTC)
    assert record.logger is None


def test_logrus_json() -> None:
    line = (
        '{"func":"UpdateRoutes","level":"error","msg":"Failed to add traffic for model iris",'
        '"source":"SeldonXDSCache","time":"2025-07-12T18:30:09Z","error":{"code":5}}'
    )
    record = parse_line(1, line)
    assert record.level == "error"
    assert record.logger == "SeldonXDSCache"
    assert record.time == datetime(2025, 7, 12, 18, 30, 9, tzinfo=UTC)
    assert dict(record.fields) == {"func": "UpdateRoutes", "error": '{"code": 5}'}


def test_lower_case_name_field_is_not_taken_for_the_logger() -> None:
    record = parse_line(1, '{"level":"info","msg":"Load model","name":"iris","Name":"AgentServiceManager"}')
    assert record.logger == "AgentServiceManager"
    assert record.fields["name"] == "iris"


def test_klog_quoted_message_with_key_values() -> None:
    line = (
        'I0712 18:30:09.123456       7 controller.go:190] "Configuration changes detected, backend reload required" '
        'ingress="seldon-mesh/seldon" count=2'
    )
    record = parse_line(1, line)
    assert record.level == "info"
    assert record.message == "Configuration changes detected, backend reload required"
    assert record.time is None  # klog has no year
    assert record.fields["ingress"] == "seldon-mesh/seldon"
    assert record.fields["count"] == "2"
    assert record.fields["caller"] == "controller.go:190"


def test_klog_plain_message_takes_kubectl_time() -> None:
    line = (
        "2025-07-12T18:30:09.123456789Z W0712 18:30:09.123456       7 controller.go:1214] "
        'Service "seldon-mesh/seldon-mesh" does not have any active Endpoint.'
    )
    record = parse_line(1, line)
    assert record.level == "warning"
    assert record.message == 'Service "seldon-mesh/seldon-mesh" does not have any active Endpoint.'
    assert record.time == datetime(2025, 7, 12, 18, 30, 9, 123456, tzinfo=UTC)


def test_mlserver_python_logging_line() -> None:
    record = parse_line(1, "2025-07-12 18:30:09,123 [mlserver] INFO - Loaded model 'iris_1' succesfully.")
    assert record.logger == "mlserver"
    assert record.level == "info"
    assert record.message == "Loaded model 'iris_1' succesfully."
    assert record.time == datetime(2025, 7, 12, 18, 30, 9, 123000)  # no zone in the source: naive
    assert record.time.tzinfo is None


def test_mlserver_access_line_in_python_logging_format() -> None:
    line = (
        '2025-07-12 18:30:09,123 [uvicorn.access] INFO - 10.244.0.9:40312 - "POST /v2/models/iris_1/infer HTTP/1.1" 200'
    )
    record = parse_line(1, line)
    assert record.logger == "uvicorn.access"
    assert record.fields["method"] == "POST"
    assert record.fields["path"] == "/v2/models/iris_1/infer"
    assert record.fields["status"] == "200"


def test_uvicorn_default_access_line() -> None:
    record = parse_line(1, 'INFO:     10.0.0.1:5000 - "POST /v2/models/x_1/infer HTTP/1.1" 200 OK')
    assert record.level == "info"
    assert record.message == '10.0.0.1:5000 - "POST /v2/models/x_1/infer HTTP/1.1" 200 OK'
    assert record.fields["method"] == "POST"
    assert record.fields["path"] == "/v2/models/x_1/infer"
    assert record.fields["status"] == "200"


def test_uvicorn_non_access_line_has_no_http_fields() -> None:
    record = parse_line(1, "INFO:     Uvicorn running on http://0.0.0.0:9000 (Press CTRL+C to quit)")
    assert record.level == "info"
    assert "method" not in record.fields


def test_kubectl_timestamp_prefix_is_stripped_and_used_as_time() -> None:
    line = "2025-07-12T18:30:09.987654321Z panic: runtime error: invalid memory address or nil pointer dereference"
    record = parse_line(4, line)
    assert record.raw == line
    assert record.message == "panic: runtime error: invalid memory address or nil pointer dereference"
    assert record.level is None
    assert record.time == datetime(2025, 7, 12, 18, 30, 9, 987654, tzinfo=UTC)


def test_own_time_wins_over_kubectl_prefix() -> None:
    record = parse_line(1, "2025-07-12T18:30:10.000000001Z " + SCHEDULER_REMOVE_ROUTES)
    assert record.time == datetime(2025, 7, 12, 18, 30, 9, tzinfo=UTC)
    assert record.message == "Remove Routes for model iris"


def test_ansi_colours_are_ignored() -> None:
    record = parse_line(1, "2025-07-12T18:30:09.123Z\t\x1b[31mERROR\x1b[0m\tsetup\tproblem running manager")
    assert record.level == "error"
    assert record.message == "problem running manager"


@pytest.mark.parametrize(
    "line",
    [
        "",
        "   ",
        "goroutine 1 [running]:",
        '{"unterminated": ',
        "[1, 2, 3]",
        "time=",
        'level="',
        "I0712 broken klog",
        "2025-07-12T18:30:09Z\tNOTALEVEL\tx\ty",
        "2025-13-45T99:99:99Z\tINFO\tlogger\tmessage",
        "\x00\x01\x02\xff",
        '{"level": {"nested": [1, 2]}, "msg": null, "ts": "not a time"}',
    ],
)
def test_malformed_lines_fall_back_without_raising(line: str) -> None:
    record = parse_line(1, line)
    assert isinstance(record, LogRecord)
    assert record.raw == line


def test_unrecognised_line_keeps_the_whole_line_as_message() -> None:
    record = parse_line(9, "goroutine 1 [running]:\r\n")
    assert record.raw == "goroutine 1 [running]:"
    assert record.message == "goroutine 1 [running]:"
    assert record.level is None and record.logger is None and record.time is None


def test_message_contains_falls_back_to_raw_when_message_is_empty() -> None:
    record = parse_line(1, '{"level":"info","event":"Subscribed to scheduler"}')
    assert record.message == ""
    assert message_contains(record, "subscribed to scheduler")


def test_random_garbage_never_raises() -> None:
    generator = random.Random(20250712)
    alphabet = 'abcXYZ019 \t"=\\{}[]:,.-_Tz+\x1b\u00e9'
    for index in range(2000):
        length = generator.randint(0, 80)
        line = "".join(generator.choice(alphabet) for _ in range(length))
        for prefix in ("", "time=", "{", "I0712 18:30:09.123456 1 a.go:1] ", "2025-07-12T18:30:09Z\tINFO\t"):
            parse_line(index, prefix + line)


def test_iter_records_is_lazy_and_keeps_line_numbers() -> None:
    def lines() -> Iterator[tuple[int, str]]:
        yield 10, SCHEDULER_REMOVE_ROUTES
        yield 11, AGENT_SUBSCRIBED
        raise AssertionError("read past what was asked for")

    records = iter_records(lines())
    first = next(records)
    second = next(records)
    assert (first.lineno, second.lineno) == (10, 11)
    assert second.message == "Subscribed to scheduler"
