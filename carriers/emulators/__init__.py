"""Local emulators of the carrier APIs, for tests, the demo, benchmarks and `parcelwatch sandbox`.

Each emulator is a real HTTP server on 127.0.0.1 that answers like its carrier, from one
carrier-neutral `Scenario` (see `carriers.emulators.scenario`) on a virtual clock, with fault
injection (`carriers.emulators.faults`) and request accounting. The common machinery lives in
`carriers.emulators.server`; `carriers.emulators.sandbox` starts them all.
"""
