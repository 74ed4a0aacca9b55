#!/usr/bin/env python3
"""Writes www/corpus.json: the demo's built-in corpus of short passages (English and Chinese),
composed from hand-written subjects and facts so that keyword search has something to find.
Deterministic: python3 www/make_corpus.py"""
import json
import os
import random

random.seed(7)

EN = {
    "tea": ["Green tea is made from unoxidised leaves and keeps a fresh, grassy taste.",
            "Black tea is fully oxidised, which gives it a darker colour and stronger flavour.",
            "Oolong tea sits between green and black tea in how much it is oxidised.",
            "Tea contains caffeine, though usually less per cup than brewed coffee.",
            "Water just below boiling is best for green tea; boiling water can make it bitter."],
    "coffee": ["Espresso is brewed by forcing hot water through finely ground coffee under pressure.",
               "Arabica beans are sweeter and more acidic than robusta beans.",
               "Cold brew coffee steeps coarse grounds in cold water for twelve hours or more.",
               "Light roasts keep more of the bean's origin flavour than dark roasts.",
               "Coffee was first cultivated on the Arabian peninsula in the fifteenth century."],
    "running": ["Beginners should increase their weekly running distance by about ten percent at most.",
                "A marathon is 42.195 kilometres long, a distance fixed in 1921.",
                "Interval training alternates fast running with slow recovery jogs.",
                "Good running shoes should fit the shape of the foot rather than a brand's promise.",
                "Stretching after a run helps muscles relax and may reduce stiffness."],
    "python": ["Python uses indentation rather than braces to mark blocks of code.",
               "A Python list can hold items of different types and grows as needed.",
               "Virtual environments keep the packages of one Python project apart from another's.",
               "List comprehensions build a new list from an iterable in a single expression.",
               "Python dictionaries keep keys in insertion order since version 3.7."],
    "rust": ["Rust's borrow checker rejects programs that could use memory after it is freed.",
             "Cargo is Rust's build tool and package manager.",
             "Rust compiles to WebAssembly, so the same code can run in a browser.",
             "Traits in Rust describe behaviour that several types can share.",
             "A Rust enum can carry data in each of its variants."],
    "browser": ["WebGPU gives web pages access to the graphics card for drawing and computing.",
                "A Web Worker runs JavaScript off the main thread so the page stays responsive.",
                "WebAssembly runs compiled code in the browser at near-native speed.",
                "IndexedDB stores large amounts of structured data inside the browser.",
                "Service workers let web apps keep working when the network is down."],
    "space": ["The Moon is about 384,000 kilometres from the Earth on average.",
              "Mars has the largest volcano in the solar system, Olympus Mons.",
              "Jupiter is the largest planet and has dozens of moons.",
              "Light from the Sun takes about eight minutes to reach the Earth.",
              "The International Space Station orbits the Earth roughly every ninety minutes."],
    "garden": ["Tomatoes need at least six hours of direct sunlight a day.",
               "Compost improves soil structure and feeds the plants slowly.",
               "Water the garden early in the morning so leaves dry before night.",
               "Basil grows well next to tomatoes and dislikes cold nights.",
               "Mulch keeps moisture in the soil and holds back weeds."],
    "search": ["A reranker reorders the candidates that a fast first-stage retriever returns.",
               "BM25 scores documents by term frequency, inverse document frequency and length.",
               "Dense retrieval compares embedding vectors instead of matching words.",
               "Mean reciprocal rank measures how high the first relevant result appears.",
               "Listwise rerankers look at all candidates together instead of one pair at a time."],
    "health": ["Adults need seven to nine hours of sleep a night for good health.",
               "Drinking enough water helps the body regulate its temperature.",
               "Regular walking lowers blood pressure and improves mood.",
               "Vitamin D is made in the skin when it is exposed to sunlight.",
               "Too much salt in the diet raises the risk of high blood pressure."],
}

ZH = {
    "皮蛋": ["皮蛋是用鸭蛋腌制而成的传统食品,蛋白呈透明的茶褐色。",
           "中医认为皮蛋性凉,体虚的人应当少吃。",
           "皮蛋瘦肉粥是广东常见的早餐。",
           "很多外国朋友不习惯皮蛋的味道,觉得它很奇怪。",
           "凉拌皮蛋加上姜末和醋,是一道简单的凉菜。"],
    "茶": ["绿茶不经过发酵,保留了茶叶的清香。",
          "普洱茶产自云南,存放多年后味道更加醇厚。",
          "乌龙茶是半发酵茶,铁观音是其中的代表。",
          "泡绿茶的水温以八十度左右为宜。",
          "茶叶中含有咖啡因,晚上喝浓茶可能影响睡眠。"],
    "高血压": ["高血压患者应当减少食盐的摄入。",
            "长期高血压会增加心脏病和中风的风险。",
            "规律运动和控制体重有助于降低血压。",
            "测量血压前应安静休息五分钟。",
            "高血压常常没有明显症状,需要定期检查。"],
    "旅游": ["长城是中国古代修建的军事防御工程,全长一万多公里。",
           "西湖位于杭州,以湖光山色和历史人文闻名。",
           "桂林山水甲天下,漓江两岸风景秀丽。",
           "去西藏旅游要注意高原反应,行程不宜太紧。",
           "故宫是明清两代的皇宫,现在是博物馆。"],
    "编程": ["Python 语言以缩进表示代码块,语法简洁。",
           "Rust 语言通过所有权机制保证内存安全。",
           "WebAssembly 让编译后的程序可以在浏览器里高速运行。",
           "版本控制工具 Git 可以记录代码的每一次修改。",
           "单元测试可以在修改代码后尽早发现错误。"],
    "搜索": ["重排序模型对初步检索得到的候选文档重新打分排序。",
           "BM25 是一种经典的基于关键词的检索算法。",
           "向量检索把文本表示成向量,再比较它们的相似度。",
           "列表式重排序模型同时考虑所有候选文档之间的关系。",
           "搜索引擎先召回大量候选,再用更精细的模型排序。"],
    "运动": ["跑步前热身可以减少受伤的风险。",
           "马拉松全程四十二点一九五公里。",
           "游泳是一种对关节压力较小的全身运动。",
           "太极拳动作缓慢,适合中老年人锻炼。",
           "运动后要及时补充水分。"],
    "天文": ["月球绕地球一周大约需要二十七天。",
           "火星表面呈红色,是因为土壤中含有氧化铁。",
           "木星是太阳系中最大的行星。",
           "太阳光到达地球大约需要八分钟。",
           "中国的天宫空间站在近地轨道上运行。"],
    "饮食": ["米饭和面条是中国人最常见的主食。",
           "饺子是北方人过春节必吃的食物。",
           "川菜以麻辣著称,花椒是重要的调料。",
           "多吃蔬菜水果有助于补充维生素。",
           "豆腐富含植物蛋白,做法多种多样。"],
    "睡眠": ["成年人每天需要七到九个小时的睡眠。",
           "睡前使用手机会影响入睡。",
           "午睡时间不宜超过半小时。",
           "规律的作息有助于提高睡眠质量。",
           "长期失眠应当及时就医。"],
}

EN_PREFIX = ["", "Did you know? ", "In short: ", "A common tip: ", "From the notes: ", "Fact: "]
EN_SUFFIX = ["", " Many people do not know this.", " This is widely agreed.", " Experts still discuss the details.", ""]
ZH_PREFIX = ["", "小知识:", "你知道吗?", "简单来说,", "常识:", "据介绍,"]
ZH_SUFFIX = ["", "很多人并不知道这一点。", "这一点得到普遍认可。", "具体细节仍有争议。", ""]


def build():
    passages = []
    for lang, topics, prefixes, suffixes in [("en", EN, EN_PREFIX, EN_SUFFIX), ("zh", ZH, ZH_PREFIX, ZH_SUFFIX)]:
        for topic, facts in topics.items():
            for i, fact in enumerate(facts):
                passages.append({"lang": lang, "topic": topic, "text": fact})
                # Two paraphrased variants of each fact, so first-stage retrieval finds
                # near-duplicates that the reranker has to order.
                for _ in range(2):
                    other = facts[(i + random.randint(1, len(facts) - 1)) % len(facts)]
                    p, s = random.choice(prefixes), random.choice(suffixes)
                    if random.random() < 0.5:
                        text = f"{p}{fact}{s}"
                    else:
                        sep = " " if lang == "en" else ""
                        text = f"{p}{fact}{sep}{other}"
                    passages.append({"lang": lang, "topic": topic, "text": text})
    seen, unique = set(), []
    for p in passages:
        if p["text"] not in seen:
            seen.add(p["text"])
            unique.append(p)
    return unique


if __name__ == "__main__":
    corpus = build()
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(corpus, f, ensure_ascii=False, indent=0)
        f.write("\n")
    print(f"{out}: {len(corpus)} passages")
