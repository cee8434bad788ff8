"""Discussions and pull requests: threads on a repo, and PRs as git refs ``refs/pr/N`` that merge into a branch."""
