#!/usr/bin/env python3
"""A pipe worker for batchsh (examples/pipe.bsh runs it).

batchsh starts it once per worker thread, with

    FABRIC_COMMAND="pipe 'python3' 'worker.py'"

and then writes one entity id per line to its stdin. The contract: answer
each id with exactly one line on stdout, and flush it; a JSON object is the
entity's result, {"error": "..."} fails the entity; leave when stdin ends.
Whatever is slow to set up (here, reading the CSV files; in real life a
database connection, a model, a JVM) is done once, not once per entity.
"""

import csv
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data", "v2")


def load():
    """The customers by id, and each customer's order totals."""
    with open(os.path.join(DATA, "customers.csv"), newline="") as f:
        customers = {row["id"]: row for row in csv.DictReader(f)}
    orders = {}
    with open(os.path.join(DATA, "orders.csv"), newline="") as f:
        for row in csv.DictReader(f):
            orders.setdefault(row["customer_id"], []).append(float(row["total"]))
    return customers, orders


def answer(customer_id, customers, orders):
    """One entity's result: what the customer spent, and the tier it fits."""
    customer = customers.get(customer_id)
    if customer is None:
        return {"error": f"no customer {customer_id}"}
    totals = orders.get(customer_id, [])
    spent = round(sum(totals), 2)
    fits = "gold" if spent >= 500 else "silver" if spent >= 200 else "bronze"
    return {
        "customer": customer_id,
        "name": customer["name"],
        "orders": len(totals),
        "spent": spent,
        "tier": customer["tier"],
        "fits": fits,
    }


def main():
    customers, orders = load()
    # One line in, one line out, flushed at once: batchsh waits for it.
    for line in sys.stdin:
        result = answer(line.rstrip("\r\n"), customers, orders)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
