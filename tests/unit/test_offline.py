"""The unit layer runs offline: its conftest blocks sockets for every test."""

from __future__ import annotations

import socket

import pytest
import pytest_socket


@pytest.mark.filterwarnings("ignore:A test tried to use socket.socket")
def test_inet_socket_refused_in_unit_layer():
    with pytest.raises(pytest_socket.SocketBlockedError):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)
