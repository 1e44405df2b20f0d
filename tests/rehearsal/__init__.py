"""The access rehearsal: the deployed roles' real calls, judged by the synthesized policies."""
