# DBA-facing targets. Every target is a thin wrapper over `bluegreen`; run
# `npx bluegreen <command> --help` for the options behind each one.
#
# Exit codes: make itself exits 0 when bluegreen did, and 2 for ANY failure (that is
# make's own convention, whatever the command returned). So each wrapped command prints
# bluegreen's own code when it is not 0 (`bluegreen exited 3: verify found differences`).
# Scripts and cron that act on 3 or 75 call `node bin/bluegreen.js ...` directly.
BG      := node bin/bluegreen.js
# Runs bluegreen ($(1): its arguments) and names its exit code when it is not 0 (make then
# exits 2), in the words of the target: $(2) what 1 means, $(3) what 3 means (defaults below).
RUN     = code=0; $(BG) $(1) || code=$$?; \
          case $$code in 0) ;; 1) echo "bluegreen exited 1: $(or $(2),failure)" >&2 ;; 2) echo "bluegreen exited 2: invalid input or usage" >&2 ;; \
          3) echo "bluegreen exited 3: $(or $(3),verify found differences)" >&2 ;; 75) echo "bluegreen exited 75: another run holds the lock (skipped)" >&2 ;; \
          *) echo "bluegreen exited $$code" >&2 ;; esac; exit $$code
# What 1 and 3 mean, per target.
STATUS_1  := an environment is UNREACHABLE (the report is incomplete)
STATUS_3  := a freeze is BROKEN (writes got through a cutover's freeze); see the report
SYNC_3    := the sync's check found differences (bluegreen verify names the keys; then sync --repair)
CUTOVER_1 := the cutover was refused or failed; the source still serves (see the report)
CUTOVER_3 := the cutover happened, but its verify found differences (bluegreen verify names the keys)
CHECK_1   := a round trip did not come back as it was sent
FROM    ?= blue
TO      ?= green
ROWS    ?= 1000000
VERSION ?=

.PHONY: help demo test test-unit test-integration typecheck env-up env-down status plan sync verify cutover rollback check seed bench bench-rss bench-model clean

help:
	@echo "make demo        the whole story on local clusters (env up, v1 -> v2, sync, cutover, rollback)"
	@echo "make test        typecheck, unit and integration tests (embedded PostgreSQL)"
	@echo "make env-up      start local blue and green   | make env-down  stop them"
	@echo "make sync        incremental sync FROM=blue TO=green (cron-safe: locked, idempotent)"
	@echo "make verify      compare FROM and TO through the mappings (prints bluegreen exited 3 on differences)"
	@echo "make cutover     freeze FROM, final sync, verify, align sequences"
	@echo "make rollback    the same in the other direction (green -> blue, down mappings)"
	@echo "make status      versions, watermarks, lag, last run and verify"
	@echo "make plan        what a sync and a cutover FROM -> TO would do (writes nothing)"
	@echo "(make exits 2 on any failure; the line before names bluegreen's own exit code)"
	@echo "make check       validate every mapping and round-trip the fixtures"
	@echo "make bench       benchmark against a raw psql COPY pipe (ROWS=$(ROWS))"
	@echo "make bench-rss   peak RSS of every command, from the installed package (ROWS=$(ROWS))"
	@echo "make bench-model the --jobs model: steps of a jobs-1 run replayed on N cores, checked against --jobs 2 (ROWS=$(ROWS))"

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
	@$(call RUN,status,$(STATUS_1),$(STATUS_3))

plan:
	@$(call RUN,plan --from $(FROM) --to $(TO))

sync:
	@$(call RUN,sync --from $(FROM) --to $(TO),,$(SYNC_3))

verify:
	@$(call RUN,verify --from $(FROM) --to $(TO))

cutover:
	@$(call RUN,cutover --from $(FROM) --to $(TO),$(CUTOVER_1),$(CUTOVER_3))

rollback:
	@$(call RUN,cutover --from $(TO) --to $(FROM),$(CUTOVER_1),$(CUTOVER_3))

check:
	@$(call RUN,check,$(CHECK_1))

seed:
	@$(call RUN,seed --to $(FROM) --rows $(ROWS))

bench:
	@bash bench/run.sh $(ROWS)

bench-rss:
	@bash bench/rss.sh $(ROWS)

bench-model:
	@bash bench/jobs-model.sh $(ROWS)

clean:
	-$(BG) env down
	rm -rf .bluegreen dumps
