"""Revenue forecasting: conversion timing, the distribution of a sum of deals,
the revenue breakdown, the finance view, pictures and exports."""
