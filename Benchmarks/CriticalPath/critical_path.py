# Counts the instructions one rank runs between two points, by stepping it under gdb:
# from the STARTth hit of the function START (after SKIP hits) until the pc reaches STOP.
# Run by ./run, which starts the rank under gdb inside mpirun; see the README there.
#
# Environment: START, STOP (function names), SKIP (hits to let pass first), SLEEP (seconds to
# wait at the start, so that the peer's message surely arrives), OUT (the report's path).
import collections
import os
import time

import gdb

start = os.environ.get("START", "mca_pml_ob1_recv_frag_callback_match")
stop = os.environ.get("STOP", "PMPI_Isend")
skip = int(os.environ.get("SKIP", "1000"))
out = os.environ.get("OUT", "critical-path.txt")
limit = 200_000

gdb.execute("set pagination off")
gdb.execute("set confirm off")
gdb.execute("set breakpoint pending on")  # START may live in a library the rank loads later
gdb.execute("break " + start)
gdb.execute("ignore 1 %d" % skip)
gdb.execute("run")
time.sleep(float(os.environ.get("SLEEP", "0.5")))
gdb.execute("delete")
stop_address = int(gdb.parse_and_eval("(long)&%s" % stop))

pcs = []
while len(pcs) < limit:
    pc = int(gdb.parse_and_eval("$pc"))
    if pc == stop_address and pcs:
        break
    pcs.append(pc)
    gdb.execute("stepi", to_string=True)

names = {}
for pc in set(pcs):
    symbol = gdb.execute("info symbol 0x%x" % pc, to_string=True).strip()
    names[pc] = symbol.split(" in section")[0].rsplit(" + ", 1)[0] if not symbol.startswith("No symbol") else "(no symbol)"
counts = collections.Counter(names[pc] for pc in pcs)
with open(out, "w") as report:
    report.write("total %d\n" % len(pcs))
    for name, count in counts.most_common():
        report.write("%6d %s\n" % (count, name))
    report.write("\n# in order: instructions, function\n")
    previous, run = None, 0
    for pc in pcs + [None]:
        name = names.get(pc)
        if name != previous and previous is not None:
            report.write("%6d %s\n" % (run, previous))
            run = 0
        previous, run = name, run + 1
gdb.execute("kill")
gdb.execute("quit")
