"""The pod runner's stand-in for a pod's network namespace (loaded through PYTHONPATH).

Every pod shares the host's network, so two pods that both listen on 0.0.0.0:9901
would collide. A kubelet gives each pod its own namespace; the runner gives each its
own loopback address instead ($GATETRACE_POD_IP, reported as the podIP) and this
module turns an IPv4 bind to the wildcard address into a bind to that address. The
process otherwise runs unchanged, with the chart's own listen addresses.
"""

import os
import socket

_POD_IP = os.environ.get("GATETRACE_POD_IP", "")
_WILDCARDS = ("", "0.0.0.0")


def _install(pod_ip: str) -> None:
    plain_bind = socket.socket.bind

    def bind(self: socket.socket, address: object) -> None:
        if (
            self.family == socket.AF_INET
            and isinstance(address, tuple)
            and address[0] in _WILDCARDS
        ):
            address = (pod_ip, *address[1:])
        plain_bind(self, address)  # type: ignore[arg-type]

    socket.socket.bind = bind  # type: ignore[method-assign, assignment]


if _POD_IP:
    _install(_POD_IP)
