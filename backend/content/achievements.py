"""The achievements catalog. Slugs are stable identities: never rename one, add a new one instead.

`metric` names the counter an achievement watches (see `services/achievements.py::METRICS`); it is
unlocked when that counter reaches `target`. Points are roughly proportional to the effort behind them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AchievementSpec:
    slug: str
    title: str
    description: str
    category: str
    metric: str
    target: int
    points: int


ACHIEVEMENTS: tuple[AchievementSpec, ...] = (
    # Exercises completed
    AchievementSpec(
        "first_exercise", "First Steps", "Complete your first exercise.", "exercises", "exercises_completed", 1, 10
    ),
    AchievementSpec("exercises_10", "Warming Up", "Complete 10 exercises.", "exercises", "exercises_completed", 10, 25),
    AchievementSpec(
        "exercises_50", "Half Century", "Complete 50 exercises.", "exercises", "exercises_completed", 50, 50
    ),
    AchievementSpec(
        "exercises_100", "Centurion", "Complete 100 exercises.", "exercises", "exercises_completed", 100, 100
    ),
    AchievementSpec(
        "exercises_500", "Code Machine", "Complete 500 exercises.", "exercises", "exercises_completed", 500, 250
    ),
    # Streaks (the longest one counts, so a streak reached once is never taken back)
    AchievementSpec("streak_3", "On a Roll", "Practise 3 days in a row.", "streaks", "longest_streak", 3, 10),
    AchievementSpec("streak_7", "Week Warrior", "Practise 7 days in a row.", "streaks", "longest_streak", 7, 25),
    AchievementSpec("streak_30", "Monthly Master", "Practise 30 days in a row.", "streaks", "longest_streak", 30, 75),
    AchievementSpec("streak_100", "Unstoppable", "Practise 100 days in a row.", "streaks", "longest_streak", 100, 200),
    AchievementSpec(
        "streak_365", "Year of Code", "Practise every day for a year.", "streaks", "longest_streak", 365, 500
    ),
    # Mastery
    AchievementSpec(
        "no_hints",
        "Look, No Hints!",
        "Complete an exercise without using a hint.",
        "mastery",
        "no_hint_completions",
        1,
        15,
    ),
    AchievementSpec(
        "perfect_score", "Flawless", "Complete an exercise with a grade of 100.", "mastery", "perfect_scores", 1, 15
    ),
    AchievementSpec("perfect_10", "Perfectionist", "Score 100 on 10 exercises.", "mastery", "perfect_scores", 10, 50),
    AchievementSpec(
        "hard_exercise", "Up for a Challenge", "Complete a hard exercise.", "mastery", "hard_completions", 1, 25
    ),
    AchievementSpec(
        "hard_25", "Battle-Hardened", "Complete 25 hard exercises.", "mastery", "hard_completions", 25, 100
    ),
    AchievementSpec(
        "topic_explorer", "Explorer", "Complete exercises in 5 different topics.", "mastery", "topics_practiced", 5, 25
    ),
    AchievementSpec(
        "topic_expert", "Specialist", "Reach the expert level in a topic.", "mastery", "topics_mastered", 1, 100
    ),
    # Habits
    AchievementSpec(
        "early_bird",
        "Early Bird",
        "Complete an exercise between 5 and 8 in the morning.",
        "habits",
        "early_completions",
        1,
        10,
    ),
    AchievementSpec(
        "night_owl",
        "Night Owl",
        "Complete an exercise between 10 at night and 4 in the morning.",
        "habits",
        "late_completions",
        1,
        10,
    ),
    # Code reviews
    AchievementSpec(
        "first_review", "Second Opinion", "Get your first AI code review.", "reviews", "reviews_completed", 1, 10
    ),
    AchievementSpec("reviews_5", "Open to Feedback", "Get 5 AI code reviews.", "reviews", "reviews_completed", 5, 25),
    AchievementSpec("reviews_20", "Review Regular", "Get 20 AI code reviews.", "reviews", "reviews_completed", 20, 50),
    AchievementSpec("reviews_50", "Review Veteran", "Get 50 AI code reviews.", "reviews", "reviews_completed", 50, 100),
)
