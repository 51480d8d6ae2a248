"""Run a flow scenario in SimGrid (CM02 max-min, no latency, no TCP window) and print each flow's finish time.

Used by test_simgrid_parity.py in a subprocess (SimGrid allows one Engine per process and may live in a
different site-packages). Input JSON on stdin: ``{"capacity": [bytes/s per link], "flows": [[link ids]],
"sizes": [bytes]}``; output JSON: finish time per flow.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    from simgrid import Actor, Engine, LinkInRoute, Mailbox, NetZone

    sc = json.load(sys.stdin)
    e = Engine(["parity", "--cfg=network/model:CM02", "--cfg=network/crosstraffic:0", "--cfg=network/TCP-gamma:0",
                "--cfg=network/weight-S:0", "--cfg=maxmin/precision:1e-12", "--cfg=surf/precision:1e-12",
                "--log=root.thresh:critical"])
    z = NetZone.create_full_zone("fabric")
    links = [z.create_link(f"l{i}", float(c)).set_latency(0).seal() for i, c in enumerate(sc["capacity"])]
    hosts = []
    for i, path in enumerate(sc["flows"]):  # one endpoint pair per flow: several flows may share NIC ports
        a, b = z.create_host(f"s{i}", "1f"), z.create_host(f"d{i}", "1f")
        z.add_route(a.netpoint, b.netpoint, None, None, [LinkInRoute(links[j]) for j in path], False)
        hosts.append((a, b))
    z.seal()
    done: dict[int, float] = {}

    def send(i: int, size: int) -> None:
        Mailbox.by_name(f"m{i}").put(i, size)
        done[i] = Engine.clock

    def recv(i: int) -> None:
        Mailbox.by_name(f"m{i}").get()

    for i, ((a, b), size) in enumerate(zip(hosts, sc["sizes"], strict=True)):
        Actor.create(f"send{i}", a, send, i, int(size))
        Actor.create(f"recv{i}", b, recv, i)
    e.run()
    json.dump([done[i] for i in range(len(hosts))], sys.stdout)


if __name__ == "__main__":
    main()
