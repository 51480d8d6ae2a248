"""The official textgrad 0.1.8 side of bench/textgrad.py (runs in the scratch venv; imports no llmlab).

One prompt-optimization step exactly as ``evaluation/prompt_optimization.py`` writes it (answers and losses
one item after another, ``tg.sum``, ``backward()``, ``optimizer.step()``), with textgrad's own
``ChatExternalClient`` engine pointed at the ``llmlab serve`` URL. Every repeat uses fresh questions, so
textgrad's prompt cache never answers for the server. Prints one JSON line: ``{"times": [...], "calls": n}``.

Usage: ``python -P textgrad_official_worker.py URL MODEL BATCH REPEATS``
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    url, model_name, batch, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    from openai import OpenAI
    from textgrad.engine.local_model_openai_api import ChatExternalClient

    import textgrad as tg

    engine = ChatExternalClient(client=OpenAI(base_url=url, api_key="none"), model_string=model_name)
    tg.set_backward_engine(engine, override=True)
    engine("warm-up", system_prompt="warm-up")  # open the connection before timing
    times = []
    for rep in range(repeats):
        system_prompt = tg.Variable(f"Answer the question step by step ({time.time()}).", requires_grad=True,
                                    role_description="structured system prompt to a somewhat capable language "
                                                     "model that specifies the behavior and strategies for the QA task")
        model = tg.BlackboxLLM(engine, system_prompt)
        optimizer = tg.TextualGradientDescent(engine=engine, parameters=[system_prompt])
        loss_fn = tg.TextLoss("Is the answer correct? Criticise it.", engine=engine)
        t0 = time.perf_counter()
        optimizer.zero_grad()
        losses = []
        for i in range(batch):
            x = tg.Variable(f"Question {rep}-{i}: how many legs do {i + 2} spiders have?", requires_grad=False,
                            role_description="query to the language model")
            response = model(x)
            losses.append(loss_fn(response))
        total_loss = tg.sum(losses)
        total_loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"times": times, "prompt": system_prompt.value}))


if __name__ == "__main__":
    main()
