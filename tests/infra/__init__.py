"""The CDK app: synthesized template, cdk-nag, cfn-lint, checkov, bundles and CI workflows."""
