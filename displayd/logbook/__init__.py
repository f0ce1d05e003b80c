"""The rotation log: what every board was given, when, and how delivery went (`store`,
`queries`, `endpoints`), and the campaign report (`report`, `report_endpoints`). Polls are
recorded by `displayd.live.recorder`."""
