"""Gate 4: the go/no-go package (package: models, seal, verify), the sealed-package judgement
(sealed), the deployment checklist (checklist) and the readiness review sign-offs (signoff)."""
