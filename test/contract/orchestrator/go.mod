module runsfleet.local/orchestrator-mirror

go 1.19
