"""CDK stacks: infrastructure only, no business logic."""
