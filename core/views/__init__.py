"""The science behind the views: profiles, planes, projections, statistics, figures and
exports."""
