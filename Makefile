# DBA-facing targets. Every target is a thin wrapper over `bluegreen`; run
# `npx bluegreen <command> --help` for the options behind each one.
BG      := node bin/bluegreen.js
FROM    ?= blue
TO      ?= green
ROWS    ?= 1000000
VERSION ?=

.PHONY: help demo test test-unit test-integration typecheck env-up env-down status sync verify cutover rollback check seed bench clean

help:
	@echo "make demo        the whole story on local clusters (env up, v1 -> v2, sync, cutover, rollback)"
	@echo "make test        typecheck, unit and integration tests (embedded PostgreSQL)"
	@echo "make env-up      start local blue and green   | make env-down  stop them"
	@echo "make sync        incremental sync FROM=blue TO=green (cron-safe: locked, idempotent)"
	@echo "make verify      compare FROM and TO through the mappings (exit 3 on differences)"
	@echo "make cutover     freeze FROM, final sync, verify, align sequences"
	@echo "make rollback    the same in the other direction (green -> blue, down mappings)"
	@echo "make status      versions, watermarks, lag, last run and verify"
	@echo "make check       validate every mapping and round-trip the fixtures"
	@echo "make bench       benchmark against a raw psql COPY pipe (ROWS=$(ROWS))"

demo:
	@node --import tsx scripts/demo.ts

test: typecheck
	npx vitest run

test-unit:
	npx vitest run --project unit

test-integration:
	npx vitest run --project integration

typecheck:
	npx tsc -p .

env-up:
	$(BG) env up
env-down:
	$(BG) env down

status:
	$(BG) status

sync:
	$(BG) sync --from $(FROM) --to $(TO)

verify:
	$(BG) verify --from $(FROM) --to $(TO)

cutover:
	$(BG) cutover --from $(FROM) --to $(TO)

rollback:
	$(BG) cutover --from $(TO) --to $(FROM)

check:
	$(BG) check

seed:
	$(BG) seed --to $(FROM) --rows $(ROWS)

bench:
	@bash bench/run.sh $(ROWS)

clean:
	-$(BG) env down
	rm -rf .bluegreen dumps
