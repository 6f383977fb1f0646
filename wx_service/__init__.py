"""The department store's WeChat service, in two halves and the assembly that joins them.

- `wx_service.ground`: what every package stands on (database and unit of work, Redis and its
  keys, the job queue and scheduler, the WeChat API clients and token store, logging, the WeChat
  protocol). It imports nothing of ours but `config`.
- The domain packages beside this one (`members`, `payments`, `marketing`) and the push adapters
  in `handlers` stand on the ground and never reach up to an edge.
- `wx_service.edges`: everything that faces the outside (the webhook, the pay notification
  endpoints, the console, the mini-program API, the OA pages, the CLI, the demo loader, the
  emulator). Edges import the domain packages; nothing imports an edge but another edge.
- `wx_service.app`: `create_app`, which builds the app from the ground and mounts the edges.

`tests/unit/test_layers.py` fails on any import that breaks these rules.
"""
