"""Test support: texts for the tiny tokenizer and a small question-answering task built in memory."""

from __future__ import annotations

import math

import mu_eval

FACTS = [
    ("What is the capital of France?", "Paris is the capital of France."),
    ("Who wrote Hamlet?", "William Shakespeare wrote Hamlet."),
    ("What colour is the sky on a clear day?", "The sky is blue on a clear day."),
    ("How many legs does a spider have?", "A spider has eight legs."),
    ("What is the boiling point of water at sea level?", "Water boils at one hundred degrees Celsius."),
    ("Which planet is known as the red planet?", "Mars is known as the red planet."),
    ("What do bees make?", "Bees make honey from the nectar of flowers."),
    ("Where is the Eiffel Tower?", "The Eiffel Tower stands in Paris."),
    ("What is frozen water called?", "Frozen water is called ice."),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci painted the Mona Lisa."),
]

TRAINING_TEXTS = [f"Question: {q}\nAnswer: {a}" for q, a in FACTS] * 20 + [
    "The quick brown fox jumps over the lazy dog. " * 3,
    "A B C D. Answer: A. Answer: B. Answer: C. Answer: D.",
]


class QATask(mu_eval.Task):
    """Scores each answer, generates an answer per question, and picks a letter per question."""

    name = "support_qa"

    def build_requests(self, ctx):
        rows = ctx.limited(FACTS)
        self.rows = rows
        requests = []
        for question, answer in rows:
            prompt = ctx.chat(question)
            requests.append(mu_eval.Score(prompt, answer, append_eos=True))
            requests.append(mu_eval.Generate(prompt, 8, ("\n",)))
            requests.append(mu_eval.Choose(prompt, (" A", " B", " C", " D")))
        return requests

    def process_results(self, results, ctx):
        scores, generations, choices = results[0::3], results[1::3], results[2::3]
        probabilities = [math.exp(-s.nll()) for s in scores]
        n = len(self.rows)
        mean = sum(probabilities) / n
        stderr = math.sqrt(sum((p - mean) ** 2 for p in probabilities) / (n - 1) / n) if n > 1 else None
        return mu_eval.TaskResult(
            metrics={
                "probability": mu_eval.MetricValue(mean, n, True, stderr),
                "first_choice": mu_eval.MetricValue(sum(c.choice == 0 for c in choices) / n, n, None),
            },
            items={"probability": probabilities, "nll": [s.nll() for s in scores]},
            samples=[{"generation": g.text, "choice": c.choice} for g, c in zip(generations, choices)],
        )


def register_support_task() -> str:
    """Register QATask in the process-wide registry (once), as a plugin would, and return its name."""
    import types

    from mu_eval.plugins import get_registry

    registry = get_registry()
    if QATask.name not in registry.entries["tasks"]:
        module = types.ModuleType("support_plugin")
        module.register_tasks = mu_eval.hookimpl(lambda register: register(QATask))
        registry.add_plugin(module, "support_plugin")
    return QATask.name
