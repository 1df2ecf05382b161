"""The lease holds while the tool is down: 20 running workspaces, scheduler and workers stopped for 48 simulated
hours, the sim host (the agents' own lease code) playing the instances on moto."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qsl

import pytest
import time_machine

from config.prices import load_prices
from provisioning.lease import DEFAULT_LEASE
from provisioning.sim_host import LEASE_TAG, SimHost
from tests.provisioning.test_aws_adapter import _body, _error
from tests.support.outage import flask_post, metered_until, overshoot, seed_outage, walk

START = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)
STEP = timedelta(minutes=2)


def _remaining(n: int) -> list[Decimal]:
    """From nearly nothing left to ~41 hours of running cost (t3.medium: $0.0416/h), and one with plenty."""
    return [Decimal("0.002") + Decimal("0.09") * i for i in range(n - 1)] + [Decimal(3)]


def test_sim_host_writes_only_changed_tags_one_call_per_distinct_set_and_a_new_one_reads_them(
    session, client, backend, ec2_calls
):
    """Instances renewed together hold the same lease: one CreateTags for them all. A lease held again (the tool
    down) is not written again. A restarted sim host holds each instance's lease from its tag."""
    prices = load_prices().region("us-east-1")
    with time_machine.travel(START, tick=False) as traveller:
        seed_outage(session, backend, prices, START, [Decimal(3)] * 3, term_end=START.date() + timedelta(30))
        up = {"tool": True}
        host = SimHost(backend, post=flask_post(client, lambda: up["tool"]), idle_after_beats=0)
        ec2_calls.calls.clear()
        assert set(host.tick().outcomes.values()) == {"renewed"}
        assert ec2_calls.calls["CreateTags"] == 1  # the lease, the first beat and no keys: the same for the three
        lease = {i.tags[LEASE_TAG] for i in backend.describe_managed(states=("running",))}
        assert lease == {repr((START + DEFAULT_LEASE).timestamp())}
        up["tool"] = False
        traveller.move_to(START + STEP)
        ec2_calls.calls.clear()
        assert {o.split(":")[0] for o in host.tick().outcomes.values()} == {"no answer"}
        assert ec2_calls.calls["CreateTags"] == 0
        traveller.move_to(START + DEFAULT_LEASE)
        restarted = SimHost(backend, post=flask_post(client, lambda: False))
        assert len(restarted.tick().stopped) == 3  # the lease held in the tags ran out: each stops


def test_a_refused_tag_call_for_a_gone_instance_does_not_cost_the_others_their_lease(session, client, backend):
    """One CreateTags covers the instances renewed together; AWS refuses the whole call when one of them was
    terminated since the describe. The others' leases are still written, one call each."""
    prices = load_prices().region("us-east-1")
    with time_machine.travel(START, tick=False):
        students = seed_outage(session, backend, prices, START, [Decimal(3)] * 3, term_end=START.date() + timedelta(30))
        gone = students[0].instance_id
        calls: list[list[str]] = []

        def refuse_with_gone(request, **_):  # type: ignore[no-untyped-def]
            ids = [v for k, v in parse_qsl(_body(request)) if k.startswith("ResourceId")]
            calls.append(ids)
            return _error("InvalidInstanceID.NotFound") if gone in ids else None

        backend.ec2.meta.events.register("before-send.ec2.CreateTags", refuse_with_gone)
        host = SimHost(backend, post=flask_post(client, lambda: True), idle_after_beats=0)
        assert set(host.tick().outcomes.values()) == {"renewed"}
    assert sorted(map(len, calls)) == [1, 1, 1, 3]  # the set, refused; then each instance alone
    leases = {i.instance_id: i.tags.get(LEASE_TAG) for i in backend.describe_managed(states=("running",))}
    renewed = repr((START + DEFAULT_LEASE).timestamp())
    assert {i: t for i, t in leases.items() if i != gone} == {s.instance_id: renewed for s in students[1:]}
    assert leases[gone] != renewed


@pytest.mark.slow
def test_tool_down_48h_every_instance_powers_off_within_the_lease(session, client, backend):
    prices = load_prices().region("us-east-1")
    with time_machine.travel(START, tick=False) as traveller:
        students = seed_outage(session, backend, prices, START, _remaining(20), term_end=START.date() + timedelta(30))
        up = {"tool": True}
        host = SimHost(backend, post=flask_post(client, lambda: up["tool"]))
        first = host.tick()  # the last answers before everything stops: each instance holds its lease
        assert first.beats == 20 and set(first.outcomes.values()) <= {"renewed", "stop"}
        up["tool"] = False  # web app, worker and scheduler all down from here
        run = walk(host, traveller, START + STEP, hours=48, step=STEP)
    assert run.running_at_end == 0
    assert {s.instance_id for s in students} == set(run.stops) | {i for i, o in first.outcomes.items() if o == "stop"}
    lease = DEFAULT_LEASE.total_seconds()
    for s in students:
        stop = run.stops.get(s.instance_id)
        stopped_at = stop.at if stop else START.timestamp()
        assert stopped_at <= START.timestamp() + lease + STEP.total_seconds(), (s, stop)
        assert overshoot(s, stopped_at, START) <= s.hourly * Decimal(lease) / 3600
    assert any(stop.reason == "lease expired" for stop in run.stops.values())


@pytest.mark.slow
def test_workers_down_48h_web_up_each_student_stops_at_their_cap(session, client, backend):
    """No sweep, so the ledger stands still: the lease alone, computed by the web app from the unmetered running
    time, stops each student when their budget is used up, within one lease of running cost."""
    prices = load_prices().region("us-east-1")
    with time_machine.travel(START, tick=False) as traveller:
        students = seed_outage(session, backend, prices, START, _remaining(20), term_end=START.date() + timedelta(30))
        host = SimHost(backend, post=flask_post(client, lambda: True))
        run = walk(host, traveller, START, hours=48, step=timedelta(minutes=15))
    lease_cost = {s.instance_id: s.hourly * Decimal(DEFAULT_LEASE.total_seconds()) / 3600 for s in students}
    over_48h = [s for s in students if s.remaining > s.compute_hourly * 48]
    assert over_48h, "some students must have had more than the outage's cost left"
    for s in students:
        stop = run.stops.get(s.instance_id)
        if s in over_48h:
            assert stop is None  # budget left: the lease kept being renewed, as it should
            continue
        assert stop is not None, s
        assert stop.reason in ("budget used up", "lease expired"), stop
        assert overshoot(s, stop.at, START) <= lease_cost[s.instance_id], (s, stop)
        assert overshoot(s, stop.at, START) > -lease_cost[s.instance_id]  # and not stopped long before its cap
    assert metered_until(session, students[0].workspace_id) == START  # nothing was swept: the lease did it
    assert run.running_at_end == len(over_48h)
