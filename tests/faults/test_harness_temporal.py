"""The fault stack's Temporal is its own: a port taken between picking it and the server binding it.

A port picked free (`free_port`) can be taken by another test's process before the dev server binds it. The
server then exits at once while that other process answers on the port; the harness once saw the port accept
and went on, so a stack's worker and API could talk to another test's Temporal. Here the port is taken on
purpose (a listener bound to it before the start, a barrier rather than a race) and the stack must come up on a
port and a namespace of its own, and say so on a restart, where moving is not possible.
"""
from __future__ import annotations

import socket

import pytest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

from tests.faults.harness import STEPS, Stack


def _taken(port: int) -> socket.socket:
    """A listener on `port`, as another test's server would hold it."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen()
    return s


@pytest.mark.budget(60)
async def test_a_port_taken_before_the_start_is_replaced_and_a_restart_on_it_fails(tmp_path, monkeypatch):
    from config import connect_temporal, get_settings

    stack = Stack(tmp_path, STEPS)
    for k, v in stack.env.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    picked, namespace = stack.port, stack.env["YINGJI_TEMPORAL_NAMESPACE"]
    try:
        with _taken(picked):
            stack.start_temporal()
            assert stack.port != picked
            assert "address already in use" in stack.logs[0].read_text()
            # this process's settings, and the workers' environment, follow the move
            assert get_settings().temporal_address == stack.env["YINGJI_TEMPORAL_ADDRESS"] == f"127.0.0.1:{stack.port}"
            client = await connect_temporal()
            described = await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=namespace))
            assert described.namespace_info.name == namespace != "default"

        stack.stop_temporal()
        with _taken(stack.port), pytest.raises(AssertionError, match="address already in use"):
            stack.start_temporal()  # a restart keeps its port and state: it cannot move, it says why
        stack.start_temporal()  # the port free again: the same server state, the same namespace
        client = await connect_temporal()
        await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=namespace))
    finally:
        get_settings.cache_clear()
        stack.stop()
