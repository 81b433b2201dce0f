"""The drafting assistant: documents drafted from numbered warehouse facts, by an OpenAI-compatible
model or by their templates, checked number by number, de-identified before they leave, reviewed,
signed and exported, with a hash-chained trail.

One idea per module:

* ``facts``: numbered facts (value, unit, source) and derived figures; ``context``: a facts query's inputs;
* ``queries_operations``, ``queries_quality``, ``queries_patients``: the fixed, scoped facts queries;
* ``templates``: rendering a document from its facts; ``specs``: the document types;
* ``parsing``: sections, sentences, citations, numbers, dates and identifiers in a draft;
* ``checker``: the strict faithfulness check; ``plain_language``: readability and wording rules;
* ``deid``: placeholders for identifiers and their reversal; ``prompt``: what the model is sent;
* ``llm``: the streaming chat-completions call with timeout and bounded retry;
* ``workflow``: template, model or fallback, then check and record; ``service``: subjects, facts, checks;
* ``store``: the trail in the records store, signing rules and the per-document verification;
* ``export`` (Markdown, Word, PDF), ``pack`` (review-pack charts as images);
* ``page_params``, ``page_data``, ``views``: what the Drafting page declares, reads and shows.
"""
