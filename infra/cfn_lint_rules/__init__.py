"""spotops's own cfn-lint rules, loaded with `cfn-lint --append-rules infra/cfn_lint_rules`.

cfn-lint imports every module here by file name, so each rule module stands alone.
"""
