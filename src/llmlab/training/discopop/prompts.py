"""DiscoPOP (arXiv 2406.08414) §3.1: the proposer's prompt templates and the code of the seed losses.

The conversation of the official ``launch_evo.py``: a system prompt fixing the reply format (JSON with
``thought``, ``name``, ``code``) and the loss signature, a first user turn with the scored archive, then
``Fitness: …`` or the validation error after every proposal.
"""

from __future__ import annotations

SYSTEM_PROMPT = """You are a machine learning researcher who is testing out different RLHF loss functions. \
When you respond, output a JSON object with exactly three keys: "thought" (your reasoning about what to try \
next and why), "name" (a short snake_case name for the loss) and "code" (the Python code of the loss). \
The code must define exactly one function with this signature:

def loss_fn(self, policy_chosen_logps: torch.FloatTensor, policy_rejected_logps: torch.FloatTensor,
            reference_chosen_logps: torch.FloatTensor, reference_rejected_logps: torch.FloatTensor
            ) -> torch.FloatTensor:

It receives one-dimensional tensors of summed log-probabilities (one entry per preference pair: the chosen \
and the rejected response under the policy and under the frozen reference model) and must return a tensor \
of per-pair losses with the same shape. `self.beta` is {beta}. `torch`, `F` (torch.nn.functional) and \
`math` are available; only torch, math and numpy may be imported. Any other hyper-parameter must be a \
constant inside the function. Aim for losses that reach a high reward while staying close to the reference \
model (low KL)."""

FIRST_USER_PROMPT = """Here are some results we've obtained:
{archive}

Please generate the next one."""

FITNESS_PROMPT = "Fitness: {fitness:.4f}.\nPlease generate the next one."

INVALID_PROMPT = "Code not valid. Error:\n{error}\nPlease generate the next one."

SEED_CODES: dict[str, str] = {
    "dpo": '''def loss_fn(self, policy_chosen_logps, policy_rejected_logps, reference_chosen_logps,
            reference_rejected_logps):
    logits = (policy_chosen_logps - policy_rejected_logps) - (reference_chosen_logps - reference_rejected_logps)
    return -F.logsigmoid(self.beta * logits)
''',
    "hinge": '''def loss_fn(self, policy_chosen_logps, policy_rejected_logps, reference_chosen_logps,
            reference_rejected_logps):
    logits = (policy_chosen_logps - policy_rejected_logps) - (reference_chosen_logps - reference_rejected_logps)
    return torch.relu(1 - self.beta * logits)
''',
    "ipo": '''def loss_fn(self, policy_chosen_logps, policy_rejected_logps, reference_chosen_logps,
            reference_rejected_logps):
    logits = (policy_chosen_logps - policy_rejected_logps) - (reference_chosen_logps - reference_rejected_logps)
    return (logits - 1 / (2 * self.beta)) ** 2
''',
    "kto_pair": '''def loss_fn(self, policy_chosen_logps, policy_rejected_logps, reference_chosen_logps,
            reference_rejected_logps):
    chosen_kl = (policy_chosen_logps - reference_chosen_logps).mean().clamp(min=0)
    rejected_kl = (policy_rejected_logps - reference_rejected_logps).mean().clamp(min=0)
    chosen = 1 - torch.sigmoid(self.beta * ((policy_chosen_logps - reference_chosen_logps) - rejected_kl))
    rejected = 1 - torch.sigmoid(self.beta * (chosen_kl - (policy_rejected_logps - reference_rejected_logps)))
    return chosen + rejected
''',
}
