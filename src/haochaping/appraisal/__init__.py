"""Appraisal (绩效考核, issue 12): indicator schemes weighted by AHP, elastic bonus and
deduction items, and the scores of units per month, quarter and year."""
