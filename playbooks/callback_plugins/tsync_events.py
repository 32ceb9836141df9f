# tsync_events: an Ansible callback that writes what tsync needs to know of a
# run as JSON lines to the file named by $TSYNC_ANSIBLE_EVENTS: each task
# failure and unreachable host (task name, host, message), and the recap.
# The human-readable output still goes to stdout (the run.log of the sys dir).
# tsync's runner enables it; a run by hand (run.sh) does not need it.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = """
    name: tsync_events
    type: aggregate
    short_description: task failures and recap as JSON lines, for tsync
    description:
      - Writes one JSON object per line to the file named by TSYNC_ANSIBLE_EVENTS.
    requirements:
      - enabled in callbacks_enabled
"""

import json
import os

from ansible.plugins.callback import CallbackBase

# Keep the messages short: tsync records them in backend_status.
MAX_TEXT = 2000


def _text(value):
    if value is None:
        return ""
    if not isinstance(value, str):
        try:
            value = json.dumps(value, default=str)
        except Exception:
            value = str(value)
    value = value.strip()
    if len(value) > MAX_TEXT:
        value = value[:MAX_TEXT] + "..."
    return value


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "tsync_events"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._path = os.environ.get("TSYNC_ANSIBLE_EVENTS", "")

    def _emit(self, event):
        if not self._path:
            return
        with open(self._path, "a") as f:
            f.write(json.dumps(event, default=str, sort_keys=True) + "\n")

    def _result_event(self, kind, result, **extra):
        r = result._result or {}
        task = result._task
        event = {
            "event": kind,
            "host": result._host.get_name() if result._host else "",
            "task": task.get_name() if task else "",
            "action": getattr(task, "action", "") if task else "",
            "msg": _text(r.get("msg")),
            "stderr": _text(r.get("stderr") or r.get("module_stderr")),
            "stdout": _text(r.get("stdout") or r.get("module_stdout")),
        }
        if "rc" in r:
            event["rc"] = r.get("rc")
        event.update(extra)
        self._emit(event)

    def v2_playbook_on_start(self, playbook):
        self._emit({"event": "start", "playbook": getattr(playbook, "_file_name", "")})

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result_event("failed", result, ignore_errors=bool(ignore_errors))

    def v2_runner_on_unreachable(self, result):
        self._result_event("unreachable", result)

    def v2_playbook_on_stats(self, stats):
        hosts = {}
        for host in sorted(stats.processed.keys()):
            hosts[host] = stats.summarize(host)
        self._emit({"event": "stats", "hosts": hosts})
