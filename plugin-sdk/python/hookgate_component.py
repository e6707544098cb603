"""The component's side of a Python plugin: implements the WIT world
`integration` on top of the author's ``app.transform`` and the ``hookgate``
module. Generated bindings stay here; authors never see them.
"""

import app
import hookgate
from componentize_py_types import Err
from wit_world.imports import host, types

# Messages of plugin errors are cut here (the gateway cuts them again).
_MAX_MESSAGE = 1000

_LEVELS = {
    "trace": host.Level.TRACE,
    "debug": host.Level.DEBUG,
    "info": host.Level.INFO,
    "warn": host.Level.WARN,
    "error": host.Level.ERROR,
}


def _host_log(level: str, message: str) -> None:
    host.log(_LEVELS.get(level, host.Level.INFO), message)


hookgate._log = _host_log


def _cut(message: str) -> str:
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 1] + "…"


class WitWorld:
    def transform(self, event: types.Event) -> types.Outcome:
        ours = hookgate.Event(
            id=event.id,
            hook_type=event.hook_type,
            integration=event.integration,
            occurred_at_ms=event.occurred_at_ms,
            content_type=event.content_type,
            body=bytes(event.body),
        )
        try:
            outcome = app.transform(ours, hookgate.Config(host.config))
        except hookgate.InvalidEvent as error:
            raise Err(types.PluginError_InvalidEvent(_cut(str(error))))
        except Exception as error:  # noqa: BLE001 — every failure is the plugin's error
            message = str(error) if isinstance(error, hookgate.Failed) else f"{type(error).__name__}: {error}"
            raise Err(types.PluginError_Failed(_cut(message)))
        if not isinstance(outcome, hookgate.Outcome):
            raise Err(types.PluginError_Failed(f"transform returned {type(outcome).__name__}, not an Outcome"))
        if outcome.dropped is not None:
            return types.Outcome_Drop(outcome.dropped)
        return types.Outcome_Deliver(
            [
                types.Request(
                    body=r.body,
                    content_type=r.content_type,
                    headers=[types.Header(name=n, value=v) for n, v in r.headers],
                )
                for r in outcome.requests
            ]
        )
