"""The emergency stop: every board blank at once, until it is lifted (`service`, `endpoints`,
`schemas`). While a stop holds the live snapshot (`displayd.live.snapshot`) answers every
board idle; the dashboard (`displayd.web`) shows a red banner and `/metrics` a gauge."""
