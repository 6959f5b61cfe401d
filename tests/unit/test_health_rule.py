"""`relais health`: a stage is unhealthy when stuck or holding open dead letters."""

from __future__ import annotations

from ops.health import StageHealth


def test_open_dead_letters_make_a_stage_unhealthy_and_say_so() -> None:
    ingress = StageHealth("ingress", "g", lag=0, oldest_age=None, dead_letters=3,
                          open_dead_letters=1, newest_open_age=42.4)
    assert ingress.problems(300) == ["1 open dead letter(s), newest 42 s old"]
    assert not ingress.stuck(300)


def test_old_or_replayed_dead_letters_alone_leave_it_healthy() -> None:
    assert StageHealth("acts-delivery", "g", 0, None, dead_letters=7).problems(300) == []


def test_a_stuck_stage_with_open_dead_letters_names_both() -> None:
    stage = StageHealth("acts-status", "g", lag=5, oldest_age=900.0, dead_letters=1,
                        open_dead_letters=1, newest_open_age=3.0)
    assert stage.problems(300) == ["5 waiting, oldest 900 s overdue",
                                   "1 open dead letter(s), newest 3 s old"]
    assert stage.problems(1000) == ["1 open dead letter(s), newest 3 s old"]


def test_health_covers_every_declared_stage_and_timer() -> None:
    from hub.flows import FLOWS
    from ops.dlq import hub_stages
    from ops.health import stage_inputs

    inputs = stage_inputs([], FLOWS)
    assert set(hub_stages(FLOWS)) <= set(inputs)
    assert inputs["acts-followup"] == (["relais.acts.followups"], 0.0)
    assert inputs["acts-prefecture"] == ([], 0.0)  # a timer: no input, its dead letters count
