"""Parses Prometheus text (the file named by the argument) with prometheus_client's own parser, the
one Prometheus' Python ecosystem uses, and prints each sample as JSON:
{"family", "type", "name", "labels", "value"} per line. A text it cannot
parse is an exception, and a non-zero exit."""

import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families

with open(sys.argv[1], encoding="utf-8") as file:
    text = file.read()
for family in text_string_to_metric_families(text):
    for sample in family.samples:
        value = sample.value
        print(
            json.dumps(
                {
                    "family": family.name,
                    "type": family.type,
                    "name": sample.name,
                    "labels": sample.labels,
                    "value": "+Inf" if math.isinf(value) else value,
                }
            )
        )
