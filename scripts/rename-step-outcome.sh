#!/bin/sh
# Issue 9.3: step bodies return Result<Done, StepError> instead of Result<StepOutcome, StepOutcome>.
# Mechanical: re-run it on step bodies written against the old names. Idempotent.
perl -0pi -e '
  s#StepOutcome::Done \{ variables(?:: (.*?))?, already_done: (.*?) \}#"Done::complete(" . ($1 // "variables") . ", $2)"#ge;
  s#StepOutcome::Verdict\b#Done::Verdict#g;
  s#StepOutcome::(done|already_done)\b#Done::$1#g;
  s#\bStepOutcome\b#StepError#g;
  s#(use (?:super|crate::procedure)::\{[^}]*?)\bStepError\b#$1Done, StepError# if /\bDone::/ && !/use (?:super|crate::procedure)::\{[^}]*\bDone\b/;
  my $uses = () = /\bStepError\b/g;
  s#(use (?:super|crate::procedure)::\{[^}]*?)\bStepError, #$1# if $uses == 1;
' src/procedure/approval.rs src/procedure/brokers.rs src/procedure/change.rs src/procedure/drill.rs \
  src/procedure/exporters.rs src/procedure/exporting.rs src/procedure/platform.rs src/procedure/regions.rs \
  src/procedure/report.rs src/procedure/snapshot.rs src/procedure/stuck.rs src/procedure/verify.rs \
  src/procedure/validate.rs src/procedure/record.rs src/notify.rs &&
cargo fmt
