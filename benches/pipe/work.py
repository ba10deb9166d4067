"""The per-entity work of the pipe benchmark, shared by worker.py (pipe:
one process, many ids) and one.py (exec, parallel: one process per id).
Cheap on purpose, as the scripts pipe is for: their start-up (the
interpreter, the imports) costs more than the work of one entity."""

import hashlib
import json


def work(entity_id):
    digest = hashlib.sha256(entity_id.encode()).hexdigest()
    return json.dumps({"id": entity_id, "digest": digest[:16], "len": len(entity_id)})
