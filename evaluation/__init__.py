"""Evaluation: metrics, the evaluate command and its reports."""
