"""The edges: everything that faces the outside world.

Here: the OA webhook (`webhook`), WeChat Pay's notification endpoints (`pay_notify`), the staff
console (`console/`), the mini-program API (`api/`), the OA's own pages (`h5`), the health check
(`health`), the operator CLI (`cli/`, one module per area), the store's job schedule
(`schedule`), the demo loader (`demo_data`), and the WeChat emulator (`emulator/`, mounted only
when configuration asks for it).

The rule: an edge may import the ground, the domain packages and `handlers`; nothing but another
edge (and the app factory, `wx_service.app`) imports an edge. An edge stays thin: it parses what
came in, calls a domain service inside one unit of work, and renders what came out.
"""
